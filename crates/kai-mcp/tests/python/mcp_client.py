"""The Python MCP SDK (`mcp`) as a client of kai's MCP server, for crates/kai-mcp/tests/server.rs.

    mcp_client.py MODE stdio COMMAND [ARG...]
    mcp_client.py MODE http URL

MODE is the SDK's `mode`: `auto` (probe `server/discover`, the 2026-07-28 protocol, and fall back
to the initialize handshake) or `legacy` (the handshake only). The script connects, lists the
tools, calls `add` and `shout` (once with an empty text, which the tool refuses), and prints one
JSON object for the Rust test to check. Any failure is a traceback and a non-zero exit.
"""

import asyncio
import json
import sys

from mcp import Client, StdioServerParameters


def result(call) -> dict:
    texts = [block.text for block in call.content if block.type == "text"]
    return {"text": "\n".join(texts), "is_error": bool(call.is_error)}


async def main(mode: str, transport: str, target: list[str]) -> dict:
    if transport == "stdio":
        server = StdioServerParameters(command=target[0], args=target[1:])
    elif transport == "http":
        server = target[0]
    else:
        raise SystemExit(f"unknown transport {transport!r}: stdio or http")
    async with Client(server, mode=mode, read_timeout_seconds=30) as client:
        tools = (await client.list_tools()).tools
        added = await client.call_tool("add", {"a": 2, "b": 3.5})
        shouted = await client.call_tool("shout", {"text": "quiet"})
        refused = await client.call_tool("shout", {"text": ""})
        return {
            "protocol": client.protocol_version,
            "tools": [
                {
                    "name": tool.name,
                    "description": tool.description,
                    "annotations": tool.annotations.model_dump(by_alias=True, exclude_none=True)
                    if tool.annotations
                    else None,
                }
                for tool in tools
            ],
            "add": result(added),
            "shout": result(shouted),
            "shout_empty": result(refused),
        }


if __name__ == "__main__":
    if len(sys.argv) < 4:
        raise SystemExit(__doc__)
    print(json.dumps(asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3:]))))
