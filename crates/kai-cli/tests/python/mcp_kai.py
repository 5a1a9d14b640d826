"""The Python MCP SDK (`mcp`) as a client of `kai mcp`, for crates/kai-cli/tests/agents.rs.

    mcp_kai.py KAI_BINARY

Starts `kai mcp` over stdio with this process's environment (which points kai at its stored
login), lists the tools, writes a note and reads it back, and prints one JSON object for the
Rust test to check. Any failure is a traceback and a non-zero exit.
"""

import asyncio
import json
import os
import sys

from mcp import Client, StdioServerParameters


def text(call) -> dict:
    texts = [block.text for block in call.content if block.type == "text"]
    return {"text": "\n".join(texts), "is_error": bool(call.is_error)}


async def main(kai: str) -> dict:
    server = StdioServerParameters(command=kai, args=["mcp"], env=dict(os.environ))
    async with Client(server, mode="legacy", read_timeout_seconds=30) as client:
        tools = (await client.list_tools()).tools
        written = await client.call_tool(
            "write_note", {"title": "Via MCP", "body": "Written by another agent."})
        read = await client.call_tool("read_note", {"title": "Via MCP"})
        missing = await client.call_tool("read_note", {"title": "No such note"})
        return {
            "tools": sorted(tool.name for tool in tools),
            "written": text(written),
            "read": text(read),
            "missing": text(missing),
        }


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    print(json.dumps(asyncio.run(main(sys.argv[1]))))
