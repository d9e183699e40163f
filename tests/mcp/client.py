"""An MCP client made with the official Python SDK (PyPI `mcp`): starts
`k8srule mcp` over stdio, calls its tools, and prints what it got as JSON
for the Rust test to check (tests/tests/it/mcp.rs)."""

import asyncio
import json
import sys

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client


def text_of(result):
    return "".join(getattr(c, "text", "") for c in result.content)


def structured(result):
    for name in ("structured_content", "structuredContent"):
        if hasattr(result, name):
            return getattr(result, name)
    return None


def is_error(result):
    for name in ("is_error", "isError"):
        if hasattr(result, name):
            return bool(getattr(result, name))
    return False


async def main(server, snapshot):
    params = StdioServerParameters(command=server, args=["mcp"])
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            init = await session.initialize()
            tools = await session.list_tools()
            report = await session.call_tool(
                "diagnose", {"files": [snapshot], "now": "2024-05-01T12:00:00Z", "min_severity": "error"}
            )
            explain = await session.call_tool("explain", {"rule": "crashloop.cgroup-oom", "lang": "zh"})
            rules = await session.call_tool("rules", {})
            missing = await session.call_tool("diagnose", {"files": [snapshot + ".missing"]})
            bad_level = await session.call_tool("diagnose", {"files": [snapshot], "min_severity": "loud"})
            print(json.dumps({
                "server": init.server_info.name if hasattr(init, "server_info") else init.serverInfo.name,
                "tools": sorted(t.name for t in tools.tools),
                "diagnose": {"error": is_error(report), "structured": structured(report)},
                "explain": {"error": is_error(explain), "text": text_of(explain)},
                "rules": {"error": is_error(rules), "structured": structured(rules)},
                "missing": {"error": is_error(missing), "text": text_of(missing)},
                "bad_level": {"error": is_error(bad_level), "text": text_of(bad_level)},
            }))


asyncio.run(main(sys.argv[1], sys.argv[2]))
