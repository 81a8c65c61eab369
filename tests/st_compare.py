#!/usr/bin/env python3
"""Compares a tensor of one safetensors file with a tensor of another (F32), printing
max and mean |diff|; exits 1 when either exceeds the given tolerances.
usage: st_compare.py A NAME_A B NAME_B MAX MEAN [ROWS]   (ROWS: compare only the first ROWS rows of A)"""
import json, struct, sys

def load(path, name):
    raw = open(path, 'rb').read()
    n = struct.unpack('<Q', raw[:8])[0]
    h = json.loads(raw[8:8 + n])
    t = h[name]
    assert t['dtype'] == 'F32', t['dtype']
    a, b = t['data_offsets']
    buf = raw[8 + n + a: 8 + n + b]
    return t['shape'], struct.unpack('<%df' % (len(buf) // 4), buf)

sa, a = load(sys.argv[1], sys.argv[2])
sb, b = load(sys.argv[3], sys.argv[4])
mx, mean = float(sys.argv[5]), float(sys.argv[6])
if len(a) != len(b):
    print('size mismatch', sa, sb); sys.exit(1)
d = [abs(x - y) for x, y in zip(a, b)]
m, avg = max(d), sum(d) / len(d)
print('max %.3g mean %.3g' % (m, avg))
sys.exit(0 if m <= mx and avg <= mean else 1)
