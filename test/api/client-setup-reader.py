"""Reads a client-setup document the way mail clients do (a real XML or plist parser) and prints it as JSON.

Usage: client-setup-reader.py autoconfig|autodiscover|plist < document
"""
import json
import plistlib
import sys
import xml.etree.ElementTree as ET

AUTODISCOVER = '{http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006}'
OUTLOOK = '{http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a}'


def local(tag):
    return tag.split('}')[-1]


def server(element):
    return dict({'type': element.get('type')}, **{c.tag: c.text for c in element})


def autoconfig(root):
    assert root.tag == 'clientConfig', root.tag
    provider = root.find('emailProvider')
    return {
        'version': root.get('version'),
        'id': provider.get('id'),
        'domains': [d.text for d in provider.findall('domain')],
        'incoming': [server(s) for s in provider.findall('incomingServer')],
        'outgoing': [server(s) for s in provider.findall('outgoingServer')],
    }


def autodiscover(root):
    assert root.tag == AUTODISCOVER + 'Autodiscover', root.tag
    error = root.find(AUTODISCOVER + 'Response/' + AUTODISCOVER + 'Error')
    if error is not None:
        return {'errorCode': error.findtext(AUTODISCOVER + 'ErrorCode'), 'message': error.findtext(AUTODISCOVER + 'Message')}
    account = root.find(OUTLOOK + 'Response/' + OUTLOOK + 'Account')
    return {
        'accountType': account.findtext(OUTLOOK + 'AccountType'),
        'action': account.findtext(OUTLOOK + 'Action'),
        'protocols': [{local(c.tag): c.text for c in p} for p in account.findall(OUTLOOK + 'Protocol')],
    }


data = sys.stdin.buffer.read()
kind = sys.argv[1]
if kind == 'plist':
    print(json.dumps(plistlib.loads(data)))
else:
    root = ET.fromstring(data)
    print(json.dumps(autoconfig(root) if kind == 'autoconfig' else autodiscover(root)))
