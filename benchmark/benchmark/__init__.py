"""weft's benchmark harness: local, WAN-emulated and remote runs, log parsing and plots."""
