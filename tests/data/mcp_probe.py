"""A stdio MCP server with no dependencies: JSON-RPC 2.0, one message per line."""
import json
import os
import sys


def answer(msgid, result=None, error=None):
    message = {"jsonrpc": "2.0", "id": msgid}
    if error is not None:
        message["error"] = error
    else:
        message["result"] = result
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def whoami():
    store = os.environ.get("PROBE_STORE", "")
    try:
        os.listdir(store)
        readable = "readable"
    except OSError:
        readable = "denied"
    with open("/proc/self/status", encoding="ascii") as status:
        seccomp = [line.split(":", 1)[1].strip() for line in status
                   if line.startswith("Seccomp:")]
    return (f"\nuid={os.getuid()} root={os.environ.get('CLAUDE_PLUGIN_ROOT')} "
            f"secret={os.environ.get('MCP_SECRET')} store={readable} seccomp={seccomp[0]}")


for line in sys.stdin:
    if not line.strip():
        continue
    request = json.loads(line)
    method, msgid = request.get("method"), request.get("id")
    if msgid is None:
        continue  # a notification
    if method == "initialize":
        answer(msgid, {"protocolVersion": request["params"]["protocolVersion"],
                       "capabilities": {"tools": {}},
                       "serverInfo": {"name": "probe-mcp", "version": "1.0"}})
    elif method == "tools/list":
        answer(msgid, {"tools": [{"name": "whoami", "description": "Who runs this server.",
                                  "inputSchema": {"type": "object", "properties": {}}}]})
    elif method == "tools/call":
        answer(msgid, {"content": [{"type": "text", "text": whoami()}], "isError": False})
    elif method == "ping":
        answer(msgid, {})
    else:
        answer(msgid, error={"code": -32601, "message": f"no method {method}"})
