"""A contact sheet of dataset images with their label boxes drawn, to
check a generated set by eye."""

import colorsys

from PIL import Image, ImageDraw

from .shapes import CLASS_NAMES


def class_colour(cls):
    r, g, b = colorsys.hsv_to_rgb(cls / len(CLASS_NAMES), 1.0, 1.0)
    return int(r * 255), int(g * 255), int(b * 255)


def draw_labels(image, labels):
    """image: PIL RGB; labels: [(class, x1, y1, x2, y2)] in pixels."""
    image = image.copy()
    draw = ImageDraw.Draw(image)
    for cls, x1, y1, x2, y2 in labels:
        colour = class_colour(cls)
        draw.rectangle([x1 - 1, y1 - 1, x2, y2], outline=colour, width=1)
        draw.text((x1, max(y1 - 11, 0)), CLASS_NAMES[cls], fill=colour)
    return image


def contact_sheet(images_with_labels, columns=3, tile=640):
    """One PIL image: a grid of tile x tile thumbnails with boxes drawn at
    full resolution before shrinking."""
    tiles = [draw_labels(img, labels).resize((tile, tile), Image.BILINEAR)
             for img, labels in images_with_labels]
    rows = (len(tiles) + columns - 1) // columns
    sheet = Image.new('RGB', (columns * tile, rows * tile), (40, 40, 40))
    for i, t in enumerate(tiles):
        sheet.paste(t, ((i % columns) * tile, (i // columns) * tile))
    return sheet


def read_yolo_labels(path, width, height):
    """Pixel boxes [(class, x1, y1, x2, y2)] from a YOLO label file."""
    labels = []
    with open(path, encoding='ascii') as f:
        for line in f:
            if line.strip():
                c, cx, cy, w, h = line.split()
                cx, w = float(cx) * width, float(w) * width
                cy, h = float(cy) * height, float(h) * height
                labels.append((int(c), cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2))
    return labels


__all__ = ['contact_sheet', 'draw_labels', 'read_yolo_labels', 'class_colour']
