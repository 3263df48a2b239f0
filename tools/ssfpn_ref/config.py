"""Reading model configurations (YOLOv5 YAML, or the JSON a model file embeds)."""

import json
import os

import yaml

REQUIRED_KEYS = ('nc', 'depth_multiple', 'width_multiple', 'anchors',
                 'backbone', 'head')


def parse_config_text(text, source='<config>'):
    """YAML is a superset of JSON, so one parser reads both forms."""
    cfg = yaml.safe_load(text)
    if not isinstance(cfg, dict):
        raise ValueError(f'{source}: the configuration is not a mapping')
    missing = [k for k in REQUIRED_KEYS if k not in cfg]
    if missing:
        raise ValueError(f'{source}: missing key(s) {", ".join(missing)}')
    return cfg


def load_config(path):
    with open(path, encoding='utf-8') as f:
        return parse_config_text(f.read(), os.fspath(path))


def config_to_json(cfg):
    """The compact JSON form stored in ssfpn.config."""
    return json.dumps(cfg, separators=(',', ':'))
