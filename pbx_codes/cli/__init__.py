"""The `pbx-codes` command line: one module per group of subcommands, `main` wires them."""
