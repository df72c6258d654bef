"""What the fork server and its worker agree on (the messages are in the package docstring)."""

DEFAULT_TARGET = "flowyard.engine.__main__:main"
PRELOAD = ("flowyard.engine.__main__", "flowyard.engine.runner")
MAX_MESSAGE = 1 << 18  # above a SEQPACKET socket's default send buffer
EXIT_TARGET_FAILED = 1
