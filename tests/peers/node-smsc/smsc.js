// An SMSC that moauth binds to, written with node-smpp (npm `smpp`), an SMPP implementation
// independent of moauth's own simulator: benchmarks and interop tests run against it so that a
// shortcut in our simulator cannot flatter a figure or hide a bug.
//
// Usage: node smsc.js [--port N] [--system-id ID] [--password PW]
// It accepts binds (transceiver, receiver, transmitter) with that system_id and password,
// answers submit_sm with a message_id, enquire_link and unbind, and is driven by JSON lines on
// stdin. It reports JSON lines on stdout:
//   {"event":"listening","port":N}                      once, first
//   {"event":"bound","command":"bind_transceiver","system_id":ID,"receivers":N}
//   {"event":"closed","receivers":N}                   a session ended (N: those left that take MOs)
//   {"event":"submit_sm","id":MSGID,"from":A,"to":B,"data_coding":D,"esm_class":E,"text":T,"at_ms":MS}
//   {"event":"unbound"}
// Commands on stdin (MOs go to the bound sessions that can receive them, in turn):
//   {"cmd":"mo","id":X,"from":A,"to":B,"text":T}
//       one deliver_sm; answers {"event":"mo_resp","id":X,"status":S,"ms":M} when it is acked.
//   {"cmd":"mos","id":X,"window":W,"mos":[{"from":A,"to":B,"text":T},...]}
//       all of them with at most W deliver_sm unanswered; answers
//       {"event":"mos_done","id":X,"count":N,"failed":F,"first_status":S,"ms":M}.
// at_ms and ms come from a monotonic clock (performance.now()).
"use strict";

const smpp = require("smpp");
const readline = require("readline");
const { performance } = require("perf_hooks");

function arg(name, fallback) {
    const i = process.argv.indexOf(name);
    return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

const port = Number(arg("--port", "0"));
const systemId = arg("--system-id", "moauth");
const password = arg("--password", "sim-pass");

function emit(event) {
    process.stdout.write(JSON.stringify(event) + "\n");
}

// Sessions bound in a mode that can receive deliver_sm.
const receivers = [];
let nextReceiver = 0;
let nextMessageId = 1;

function receiver() {
    if (receivers.length === 0) {
        return null;
    }
    nextReceiver = (nextReceiver + 1) % receivers.length;
    return receivers[nextReceiver];
}

function text(pdu) {
    const sm = pdu.message_payload || pdu.short_message;
    if (!sm) {
        return "";
    }
    const message = sm.message !== undefined ? sm.message : sm;
    return Buffer.isBuffer(message) ? message.toString("latin1") : String(message);
}

const server = smpp.createServer((session) => {
    // node-smpp leaves Nagle on: without this every small PDU waits for the peer's delayed ACK.
    session.socket.setNoDelay(true);
    const bind = (command, canReceive) =>
        session.on(command, (pdu) => {
            if (pdu.system_id !== systemId || pdu.password !== password) {
                session.send(pdu.response({ command_status: smpp.ESME_RBINDFAIL }));
                session.close();
                return;
            }
            session.send(pdu.response({ system_id: "node-smsc" }));
            if (canReceive) {
                receivers.push(session);
            }
            emit({ event: "bound", command, system_id: pdu.system_id, receivers: receivers.length });
        });
    bind("bind_transceiver", true);
    bind("bind_receiver", true);
    bind("bind_transmitter", false);
    session.on("submit_sm", (pdu) => {
        const id = (nextMessageId++).toString(16);
        session.send(pdu.response({ message_id: id }));
        emit({
            event: "submit_sm",
            id,
            from: pdu.source_addr,
            to: pdu.destination_addr,
            data_coding: pdu.data_coding,
            esm_class: pdu.esm_class,
            text: text(pdu),
            at_ms: performance.now(),
        });
    });
    session.on("enquire_link", (pdu) => session.send(pdu.response()));
    session.on("unbind", (pdu) => {
        session.send(pdu.response());
        session.close();
        emit({ event: "unbound" });
    });
    session.on("close", () => {
        const i = receivers.indexOf(session);
        if (i >= 0) {
            receivers.splice(i, 1);
        }
        emit({ event: "closed", receivers: receivers.length });
    });
    // An 'error' is followed by 'close'; without a listener node would throw.
    session.on("error", () => {});
});

// Sends one MO; `done(status)` once the ESME answered (or at once, 0x8 system error, if no
// session can take it).
function deliver(mo, done) {
    const session = receiver();
    if (!session) {
        done(0x8);
        return;
    }
    const sent = session.deliver_sm(
        {
            source_addr_ton: 1,
            source_addr_npi: 1,
            source_addr: mo.from.replace(/^\+/, ""),
            destination_addr: mo.to || "10690000",
            short_message: mo.text,
        },
        (resp) => done(resp.command_status),
    );
    if (!sent) {
        done(0x8);
    }
}

function many(command) {
    const started = performance.now();
    const mos = command.mos;
    let next = 0;
    let answered = 0;
    let failed = 0;
    let firstStatus = 0;
    const finish = () =>
        emit({
            event: "mos_done",
            id: command.id,
            count: mos.length,
            failed,
            first_status: firstStatus,
            ms: performance.now() - started,
        });
    if (mos.length === 0) {
        finish();
        return;
    }
    const pump = () => {
        if (next >= mos.length) {
            return;
        }
        deliver(mos[next++], (status) => {
            answered++;
            if (status !== 0) {
                failed++;
                firstStatus = firstStatus || status;
            }
            if (answered === mos.length) {
                finish();
            } else {
                pump();
            }
        });
    };
    for (let i = 0; i < Math.max(1, command.window || 1); i++) {
        pump();
    }
}

readline.createInterface({ input: process.stdin }).on("line", (line) => {
    if (!line.trim()) {
        return;
    }
    const command = JSON.parse(line);
    if (command.cmd === "mo") {
        const started = performance.now();
        deliver(command, (status) =>
            emit({ event: "mo_resp", id: command.id, status, ms: performance.now() - started }),
        );
    } else if (command.cmd === "mos") {
        many(command);
    } else {
        emit({ event: "error", message: `unknown command ${command.cmd}` });
    }
}).on("close", () => process.exit(0));

server.listen(port, "127.0.0.1", () => emit({ event: "listening", port: server.address().port }));
