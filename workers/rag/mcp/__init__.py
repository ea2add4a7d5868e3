"""The MCP server (`POST`/`DELETE /mcp`, forwarded by the gateway): Streamable HTTP with plain
JSON replies. transport: the HTTP side (envelope, headers, sessions, status codes); jsonrpc:
parsing messages; sessions: Mcp-Session-Id in D1; tools and resources: the methods, over the
tool dispatcher and the ingest Worker as everywhere else."""
