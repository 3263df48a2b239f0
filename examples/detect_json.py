#!/usr/bin/python3
"""Prints one JSON line per frame with ssfpndetect's detections, like
detect-json.c, with PyGObject.

    GST_PLUGIN_PATH=build/gst examples/detect_json.py MODEL.safetensors|default [VIDEO]

PyGObject cannot read the fields of a GstVideoRegionOfInterestMeta on
GStreamer 1.22 (metas are not introspectable), so this reads the same
detections from the element messages that post-messages=true puts on the
bus: one "ssfpndetect" structure per frame, in stream order.

Needs python3-gi, gir1.2-gstreamer-1.0 and python3-gst-1.0 (its overrides
turn the GstValueList of detections into a Python sequence).
"""

import json
import sys

import gi

gi.require_version('Gst', '1.0')
from gi.repository import Gst  # noqa: E402

FIELDS = ('label', 'label_id', 'confidence', 'x', 'y', 'w', 'h')
CORNERS = ('x_min', 'y_min', 'x_max', 'y_max')


def frame_json(s):
    detections = []
    for d in s.get_value('detections'):
        entry = {k: d.get_value(k) for k in FIELDS}
        entry['confidence'] = round(entry['confidence'], 4)
        entry['box'] = [round(d.get_value(k), 5) for k in CORNERS]
        detections.append(entry)
    return {'pts': s.get_value('timestamp'),
            'inferred': s.get_value('inferred'),
            'detections': detections}


def main(argv):
    if len(argv) < 2:
        print(f'usage: {argv[0]} MODEL.safetensors|default [VIDEO]', file=sys.stderr)
        return 2
    Gst.init(None)
    model = '' if argv[1] == 'default' else argv[1]  # empty: the built-in model
    source = (f'filesrc location="{argv[2]}" ! decodebin ! videoconvert'
              if len(argv) > 2 else
              'videotestsrc num-buffers=30 pattern=ball ! '
              'video/x-raw,format=NV12,width=320,height=240')
    pipeline = Gst.parse_launch(
        f'{source} ! ssfpndetect model="{model}" post-messages=true ! '
        'fakesink')
    bus = pipeline.get_bus()
    pipeline.set_state(Gst.State.PLAYING)
    status = 0
    while True:
        msg = bus.timed_pop_filtered(
            Gst.CLOCK_TIME_NONE,
            Gst.MessageType.ELEMENT | Gst.MessageType.EOS | Gst.MessageType.ERROR)
        if msg.type == Gst.MessageType.ELEMENT:
            s = msg.get_structure()
            if s.get_name() == 'ssfpndetect':
                print(json.dumps(frame_json(s)), flush=True)
            continue
        if msg.type == Gst.MessageType.ERROR:
            error, _ = msg.parse_error()
            print(f'error: {error.message}', file=sys.stderr)
            status = 1
        break
    pipeline.set_state(Gst.State.NULL)
    return status


if __name__ == '__main__':
    sys.exit(main(sys.argv))
