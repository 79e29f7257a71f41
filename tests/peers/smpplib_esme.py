"""An ESME written with python-smpplib, an SMPP implementation independent of moauth's.

Run by tests/sim_vs_smpplib.rs against moauth's simulator: binds as a transceiver, prints each
MO it receives (smpplib answers deliver_sm_resp itself), then submits one GSM and one UCS-2
message and unbinds. Prints JSON lines on stdout for the test to read.
"""
import json
import sys

import smpplib.client
import smpplib.consts
import smpplib.gsm

port, want = int(sys.argv[1]), int(sys.argv[2])
received = []


def on_mo(pdu):
    data = pdu.short_message
    text = data.decode("utf-16-be") if pdu.data_coding == 8 else data.decode("ascii")
    received.append({
        "from": pdu.source_addr.decode(),
        "to": pdu.destination_addr.decode(),
        "data_coding": pdu.data_coding,
        "text": text,
    })


client = smpplib.client.Client("127.0.0.1", port, timeout=20)
client.set_message_received_handler(on_mo)
client.connect()
client.bind_transceiver(system_id="moauth", password="sim-pass")
print(json.dumps({"bound": True}), flush=True)
while len(received) < want:
    client.read_once()
for text in ["Hello from smpplib", "你好，smpplib"]:
    parts, coding, esm_class = smpplib.gsm.make_parts(text)
    for part in parts:
        client.send_message(
            source_addr_ton=smpplib.consts.SMPP_TON_UNK,
            source_addr="10690000",
            dest_addr_ton=smpplib.consts.SMPP_TON_INTL,
            dest_addr_npi=smpplib.consts.SMPP_NPI_ISDN,
            destination_addr="8613800138000",
            short_message=part,
            data_coding=coding,
            esm_class=esm_class,
        )
        client.read_once()
print(json.dumps({"received": received}), flush=True)
client.unbind()
client.disconnect()
