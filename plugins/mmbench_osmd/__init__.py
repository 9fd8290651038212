"""OS-MD (Wei, Luo & Luo) — incomplete-multimodal plugin; losses in :mod:`mmbench_osmd.losses`."""
