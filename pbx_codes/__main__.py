"""`python -m pbx_codes` runs the CLI."""
from pbx_codes.cli.main import main

raise SystemExit(main())
