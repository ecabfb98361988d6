# Touches 32 MiB of anonymous memory, says so, and keeps it while it sleeps, so that
# /proc/PID/numa_maps shows where the kernel put the pages.
import time

block = bytearray(32 << 20)  # zero-filled: every page is written
print("filled", len(block), flush=True)
time.sleep(1000)
