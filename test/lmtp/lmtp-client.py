"""Drives LMTP transactions with Python's smtplib.LMTP, as a real client would.

stdin: {"host", "port", "transactions": [{"from", "to": [...], "message": base64, "mailOptions": [...]}]}
stdout: {"lhlo": [code, text], "features": {...}, "transactions": [{"mail", "rcpt": [...], "data": [...]}]}

smtplib.LMTP reads only the first reply after DATA; the other recipients' replies follow with
getreply(), one per recipient accepted at RCPT, in RCPT order (RFC 2033 section 4.2).
"""

import base64
import json
import smtplib
import sys


def reply(code_text):
    code, text = code_text
    return [code, text.decode("utf-8", "replace") if isinstance(text, bytes) else text]


def transaction(client, spec):
    result = {"mail": reply(client.mail(spec["from"], spec.get("mailOptions", []))), "rcpt": [], "data": []}
    if result["mail"][0] != 250:
        client.rset()
        return result
    accepted = 0
    for recipient in spec["to"]:
        answer = reply(client.rcpt(recipient))
        result["rcpt"].append(answer)
        accepted += answer[0] == 250
    if accepted == 0:
        client.rset()
        return result
    message = base64.b64decode(spec["message"])
    try:
        result["data"].append(reply(client.data(message)))
    except smtplib.SMTPDataError as error:
        result["data"].append([error.smtp_code, error.smtp_error.decode("utf-8", "replace")])
        return result
    for _ in range(accepted - 1):
        result["data"].append(reply(client.getreply()))
    return result


def main():
    spec = json.load(sys.stdin)
    client = smtplib.LMTP(spec["host"], spec["port"], timeout=60)
    lhlo = reply(client.ehlo("client.test"))
    output = {"lhlo": lhlo, "features": client.esmtp_features, "transactions": []}
    for spec_transaction in spec["transactions"]:
        output["transactions"].append(transaction(client, spec_transaction))
    client.quit()
    json.dump(output, sys.stdout)


main()
