/* Image files to 8-bit RGB pixels for `ssfpn detect` (image_decode.c): PNG
 * through libpng and JPEG through libjpeg, told apart by their first bytes,
 * not by the file name. */
#ifndef SSFPN_IMAGE_DECODE_H
#define SSFPN_IMAGE_DECODE_H

#include <glib.h>

G_BEGIN_DECLS

/* Packed RGB, 3 bytes a pixel, rows of exactly width x 3 bytes. */
typedef struct {
  int width, height;
  guint8 *pixels;
} DecodedImage;

/* Reads and decodes the image at @path. PNG: every colour type and bit
 * depth, interlaced or not; grey becomes R = G = B, 16-bit samples keep
 * their high byte, alpha is dropped (as OpenCV's imread does). JPEG: grey,
 * YCbCr, RGB, CMYK and YCCK. Errors (SSFPN_ERROR_IO for an unreadable file,
 * SSFPN_ERROR_FORMAT for anything else) name @path and say what is wrong:
 * not an image, truncated, corrupt, unsupported. */
DecodedImage *image_decode_file (const char *path, GError **error);

void decoded_image_free (DecodedImage *image);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (DecodedImage, decoded_image_free)

G_END_DECLS

#endif /* SSFPN_IMAGE_DECODE_H */
