#!/usr/bin/env python3
"""Writes a damaged copy of a safetensors file for the bad-input tests.
usage: mutate_st.py SRC DST KIND [TENSOR]
KIND: truncate | hlen_past_eof | offsets_past_data | overlap | unknown_dtype | swap_shape | drop_tensor | bad_json"""
import json, struct, sys

src, dst, kind = sys.argv[1], sys.argv[2], sys.argv[3]
name = sys.argv[4] if len(sys.argv) > 4 else None
raw = open(src, 'rb').read()
n = struct.unpack('<Q', raw[:8])[0]
hdr = json.loads(raw[8:8 + n])
data = raw[8 + n:]
tensors = sorted((k for k in hdr if k != '__metadata__'), key=lambda k: hdr[k]['data_offsets'][0])
name = name or tensors[len(tensors) // 2]

def write(h, body):
    js = json.dumps(h).encode()
    js += b' ' * (-len(js) % 8)
    open(dst, 'wb').write(struct.pack('<Q', len(js)) + js + body)

if kind == 'truncate':
    open(dst, 'wb').write(raw[:len(raw) // 2])
elif kind == 'hlen_past_eof':
    open(dst, 'wb').write(struct.pack('<Q', len(raw) * 4) + raw[8:])
elif kind == 'offsets_past_data':
    a, b = hdr[name]['data_offsets']
    hdr[name]['data_offsets'] = [len(data) - (b - a) + 64, len(data) + 64]
    write(hdr, data)
elif kind == 'overlap':
    i = tensors.index(name)
    other = tensors[i - 1] if i else tensors[i + 1]
    a, b = hdr[name]['data_offsets']
    oa = hdr[other]['data_offsets'][0]
    hdr[name]['data_offsets'] = [oa + 4, oa + 4 + (b - a)]
    write(hdr, data)
elif kind == 'unknown_dtype':
    hdr[name]['dtype'] = 'Q4_K'
    write(hdr, data)
elif kind == 'swap_shape':
    hdr[name]['shape'] = list(reversed(hdr[name]['shape']))
    write(hdr, data)
elif kind == 'drop_tensor':
    del hdr[name]
    write(hdr, data)
elif kind == 'bad_json':
    js = b'{"a": [1, 2' + b' ' * 5
    open(dst, 'wb').write(struct.pack('<Q', len(js)) + js + data)
else:
    sys.exit('unknown kind ' + kind)
print(name)
