"""The engine's output survives the death of whoever read it."""

import os
import subprocess
import sys
import textwrap


def test_printing_after_the_reader_died_does_not_fail():
    """A flow process whose stdout reader is gone keeps running and exits cleanly."""
    script = textwrap.dedent(
        """
        import os, sys
        from flowyard.engine.streams import protect_standard_streams
        protect_standard_streams()
        os.close(int(sys.argv[1]))
        for i in range(1000):
            print("line", i, flush=True)
            sys.stderr.write("err\\n")
        sys.exit(7)
        """
    )
    read_end, write_end = os.pipe()
    process = subprocess.Popen(
        [sys.executable, "-c", script, str(read_end)],
        stdout=write_end,
        stderr=write_end,
        pass_fds=(read_end,),
    )
    os.close(write_end)
    os.close(read_end)  # nobody reads any more: the next writes would break the pipe
    assert process.wait(timeout=60) == 7
