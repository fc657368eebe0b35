"""The apps ``benchmarks/mcp_bench.py`` serves: one trivial MCP tool, through Django and through the SDK alone."""
