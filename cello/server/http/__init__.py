"""The HTTP/1.1 side of the server.

head.py (request-head rules both parser backends share), parsers.py (the httptools and h11
adapters, emitting the same five events), body.py (streamed request bodies), wire.py
(response bytes), state.py (the connection's lifecycle without I/O: phases, read-pause
reasons, pipeline queue, keep-alive and timeout decisions) and protocol.py (the asyncio
protocol: transport, timers, tasks and writes, acting on what state.py decides).
"""
