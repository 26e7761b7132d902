"""A TCP relay that delays each direction of every connection by a fixed time, preserving
order: the WAN emulation's fallback where the kernel has no sch_netem.

    python3 delay_proxy.py SPEC.json
SPEC is a list of {"listen": "ip:port", "target": "ip:port", "forward_ms": d, "back_ms": d}.
It emulates latency only (not bandwidth, jitter or loss): every chunk read at time t is written
on at t + delay. Runs until SIGTERM.
"""

import asyncio
import json
import signal
import sys
import time

CHUNK = 1 << 16
# Bytes a direction may hold in flight before it stops reading (back-pressure like a socket).
MAX_IN_FLIGHT = 64 << 20


async def pump(reader, writer, delay):
    queue = asyncio.Queue()
    space = asyncio.Semaphore(MAX_IN_FLIGHT // CHUNK)

    async def forward():
        while True:
            due, data = await queue.get()
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            if data is None:
                break
            writer.write(data)
            await writer.drain()
            space.release()
        try:
            writer.write_eof()
        except OSError:
            pass

    task = asyncio.ensure_future(forward())
    try:
        while True:
            await space.acquire()
            data = await reader.read(CHUNK)
            queue.put_nowait((time.monotonic() + delay, data or None))
            if not data:
                break
        await task
    except (ConnectionError, OSError):
        task.cancel()
    finally:
        writer.close()


def relay(target, forward_ms, back_ms):
    host, port = target.rsplit(':', 1)

    async def handle(client_reader, client_writer):
        try:
            server_reader, server_writer = await asyncio.open_connection(host, int(port))
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(pump(client_reader, server_writer, forward_ms / 1000),
                             pump(server_reader, client_writer, back_ms / 1000),
                             return_exceptions=True)
    return handle


async def main(spec):
    servers = []
    for s in spec:
        host, port = s['listen'].rsplit(':', 1)
        servers.append(await asyncio.start_server(relay(s['target'], s['forward_ms'],
                                                        s['back_ms']), host, int(port)))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    print(f'relaying {len(servers)} addresses', flush=True)
    await stop.wait()


if __name__ == '__main__':
    with open(sys.argv[1]) as f:
        asyncio.run(main(json.load(f)))
