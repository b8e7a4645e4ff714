"""Drives Python's poplib against a POP3 server; the plan comes as JSON on stdin, results go to stdout."""
import base64
import json
import poplib
import ssl
import sys

plan = json.load(sys.stdin)
context = ssl.create_default_context()
context.check_hostname = False
context.verify_mode = ssl.CERT_NONE

if plan["mode"] == "pop3s":
    client = poplib.POP3_SSL("127.0.0.1", plan["port"], context=context)
else:
    client = poplib.POP3("127.0.0.1", plan["port"])
    if plan["mode"] == "stls":
        client.stls(context)

result = {"capa": sorted(client.capa().keys())}
client.user(plan["user"])
client.pass_(plan["password"])
count, size = client.stat()
result["stat"] = [count, size]
result["uidl"] = [line.decode() for line in client.uidl()[1]]
result["messages"] = []
for number in range(1, count + 1):
    _, lines, octets = client.retr(number)
    # poplib strips CRLF and byte-stuffing; put the line endings back to compare bytes.
    result["messages"].append({"octets": octets, "raw": base64.b64encode(b"\r\n".join(lines) + b"\r\n").decode()})
for number in plan.get("delete", []):
    client.dele(number)
result["quit"] = client.quit().decode()
print(json.dumps(result))
