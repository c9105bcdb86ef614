"""ORM-free audio pipeline for the phone receptionist (codecs, VAD, STT, TTS, pacing).

Nothing in this package may import Django: it is shared by the Channels
consumer, the CLI simulator and the benchmarks.
"""
