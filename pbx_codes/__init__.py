"""pbx-codes: why did this call fail? Carrier-accurate hangup reasons for Asterisk and FreeSWITCH."""

__version__ = "0.1.0"
