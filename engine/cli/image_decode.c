/* PNG and JPEG files to packed 8-bit RGB. The file is read whole, its first
 * bytes pick the decoder, and each decoder reads from memory so that a
 * short file shows up as "truncated" rather than as a read error. Both
 * libraries report fatal errors by longjmp: each decoder keeps everything
 * it allocates in a reader struct owned by its caller, so the caller frees
 * it whichever way the decoder returns. */
#include "image_decode.h"

#include <errno.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>

#include <png.h>
#include <jpeglib.h>
#include <jerror.h>

#include "ssfpn/ssfpn.h"

static const guint8 png_signature[8] = { 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n' };
static const guint8 jpeg_signature[3] = { 0xff, 0xd8, 0xff };

void
decoded_image_free (DecodedImage *image)
{
  if (image == NULL)
    return;
  g_free (image->pixels);
  g_free (image);
}

/* A zeroed image of @width x @height, or NULL when too large to hold. */
static DecodedImage *
decoded_image_try_new (guint64 width, guint64 height)
{
  if (width == 0 || height == 0 || width > G_MAXINT || height > G_MAXINT
      || width * height > G_MAXSIZE / 3)
    return NULL;
  guint8 *pixels = g_try_malloc0 ((gsize) (width * height * 3));
  if (pixels == NULL)
    return NULL;
  DecodedImage *image = g_new0 (DecodedImage, 1);
  image->width = (int) width;
  image->height = (int) height;
  image->pixels = pixels;
  return image;
}

static guint8 *
read_whole_file (const char *path, gsize *size, GError **error)
{
  FILE *file = fopen (path, "rb");
  if (file == NULL)
    {
      int saved = errno;
      g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_IO, "%s: cannot open: %s",
                   path, g_strerror (saved));
      return NULL;
    }
  g_autoptr (GByteArray) bytes = g_byte_array_new ();
  guint8 chunk[65536];
  size_t n;
  while ((n = fread (chunk, 1, sizeof chunk, file)) > 0)
    g_byte_array_append (bytes, chunk, (guint) n);
  int saved = errno;
  gboolean failed = ferror (file);
  fclose (file);
  if (failed)
    {
      g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_IO, "%s: cannot read: %s",
                   path, g_strerror (saved));
      return NULL;
    }
  if (bytes->len == 0)
    {
      g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_FORMAT,
                   "%s: empty file, not an image", path);
      return NULL;
    }
  *size = bytes->len;
  return g_byte_array_free (g_steal_pointer (&bytes), FALSE);
}

/* ---- PNG ------------------------------------------------------------- */

typedef struct {
  const guint8 *data;
  gsize size, offset;
  gboolean truncated;
  char message[256];
  DecodedImage *image;
  png_bytep *rows;
} PngReader;

static void
on_png_error (png_structp png, png_const_charp message)
{
  PngReader *reader = png_get_error_ptr (png);
  g_strlcpy (reader->message, message, sizeof reader->message);
  png_longjmp (png, 1);
}

static void
on_png_warning (png_structp png, png_const_charp message)
{
  /* Ancillary-chunk complaints do not stop decoding; stderr stays quiet. */
  (void) png;
  (void) message;
}

static void
read_png_bytes (png_structp png, png_bytep out, size_t length)
{
  PngReader *reader = png_get_io_ptr (png);
  if (length > reader->size - reader->offset)
    {
      reader->truncated = TRUE;
      png_error (png, "unexpected end of file");
    }
  memcpy (out, reader->data + reader->offset, length);
  reader->offset += length;
}

/* Asks libpng for 8-bit RGB whatever the file holds, then reads every row
 * (all seven passes when interlaced). */
static gboolean
png_decode_into (png_structp png, png_infop info, PngReader *reader)
{
  if (setjmp (png_jmpbuf (png)))
    return FALSE;

  png_set_read_fn (png, reader, read_png_bytes);
  png_read_info (png, info);

  png_uint_32 width, height;
  int depth, color_type, interlace;
  png_get_IHDR (png, info, &width, &height, &depth, &color_type, &interlace,
                NULL, NULL);
  if (color_type == PNG_COLOR_TYPE_PALETTE)
    png_set_palette_to_rgb (png);
  if (!(color_type & PNG_COLOR_MASK_COLOR) && depth < 8)
    png_set_expand_gray_1_2_4_to_8 (png);
  if (depth == 16)
    png_set_strip_16 (png);
  /* Palette expansion turns tRNS into an alpha channel: drop it too. */
  if ((color_type & PNG_COLOR_MASK_ALPHA) || png_get_valid (png, info, PNG_INFO_tRNS))
    png_set_strip_alpha (png);
  if (!(color_type & PNG_COLOR_MASK_COLOR))
    png_set_gray_to_rgb (png);
  png_set_interlace_handling (png);
  png_read_update_info (png, info);
  if (png_get_rowbytes (png, info) != (size_t) width * 3)
    png_error (png, "cannot convert this colour type and bit depth to RGB");

  reader->image = decoded_image_try_new (width, height);
  reader->rows = reader->image ? g_try_new (png_bytep, height) : NULL;
  if (reader->rows == NULL)
    png_error (png, "too large to decode");
  for (png_uint_32 y = 0; y < height; y++)
    reader->rows[y] = reader->image->pixels + (gsize) y * width * 3;
  png_read_image (png, reader->rows);
  /* Up to IEND, so that a file cut after its pixel data still fails. */
  png_read_end (png, NULL);
  return TRUE;
}

static DecodedImage *
decode_png (const char *path, const guint8 *data, gsize size, GError **error)
{
  PngReader reader = { .data = data, .size = size };
  png_structp png = png_create_read_struct (PNG_LIBPNG_VER_STRING, &reader,
                                            on_png_error, on_png_warning);
  png_infop info = png ? png_create_info_struct (png) : NULL;
  if (info == NULL)
    {
      png_destroy_read_struct (png ? &png : NULL, NULL, NULL);
      g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_FORMAT,
                   "%s: cannot set up the PNG decoder (out of memory)", path);
      return NULL;
    }

  gboolean ok = png_decode_into (png, info, &reader);
  png_destroy_read_struct (&png, &info, NULL);
  g_free (reader.rows);
  if (ok)
    return reader.image;

  decoded_image_free (reader.image);
  if (reader.truncated)
    g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_FORMAT,
                 "%s: truncated PNG (the file ends early)", path);
  else
    g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_FORMAT,
                 "%s: corrupt or unsupported PNG: %s", path, reader.message);
  return NULL;
}

/* ---- JPEG ------------------------------------------------------------ */

typedef struct {
  struct jpeg_error_mgr base; /* first: libjpeg hands back a pointer to it */
  jmp_buf jump;
  gboolean truncated;
  char message[JMSG_LENGTH_MAX];
} JpegErrors;

typedef struct {
  struct jpeg_decompress_struct cinfo;
  JpegErrors errors;
  gboolean unsupported;
  DecodedImage *image;
  guint8 *row;
} JpegReader;

static void
on_jpeg_error (j_common_ptr cinfo)
{
  JpegErrors *errors = (JpegErrors *) cinfo->err;
  cinfo->err->format_message (cinfo, errors->message);
  longjmp (errors->jump, 1);
}

static void
on_jpeg_message (j_common_ptr cinfo, int level)
{
  /* libjpeg pads a short file with an end marker and only warns; a cut
   * file is an error here. Other warnings and traces stay quiet. */
  JpegErrors *errors = (JpegErrors *) cinfo->err;
  if (level < 0 && cinfo->err->msg_code == JWRN_JPEG_EOF)
    {
      errors->truncated = TRUE;
      longjmp (errors->jump, 1);
    }
}

/* Adobe's CMYK JPEGs store inverted inks (255 = no ink); others store the
 * ink itself. Either way, R = (1 - C) (1 - K) and so on. */
static void
cmyk_row_to_rgb (const guint8 *cmyk, guint8 *rgb, int width, gboolean inverted)
{
  for (int x = 0; x < width; x++, cmyk += 4, rgb += 3)
    {
      unsigned k = inverted ? cmyk[3] : 255u - cmyk[3];
      for (int c = 0; c < 3; c++)
        {
          unsigned ink = inverted ? cmyk[c] : 255u - cmyk[c];
          rgb[c] = (guint8) ((ink * k + 127) / 255);
        }
    }
}

static gboolean
jpeg_decode_into (JpegReader *reader, const guint8 *data, gsize size)
{
  struct jpeg_decompress_struct *cinfo = &reader->cinfo;
  if (setjmp (reader->errors.jump))
    return FALSE;

  jpeg_create_decompress (cinfo);
  jpeg_mem_src (cinfo, (unsigned char *) data, (unsigned long) size);
  jpeg_read_header (cinfo, TRUE);
  switch (cinfo->jpeg_color_space)
    {
    case JCS_GRAYSCALE:
      cinfo->out_color_space = JCS_GRAYSCALE;
      break;
    case JCS_YCbCr:
    case JCS_RGB:
      cinfo->out_color_space = JCS_RGB;
      break;
    case JCS_CMYK:
    case JCS_YCCK:
      cinfo->out_color_space = JCS_CMYK;
      break;
    default:
      reader->unsupported = TRUE;
      return FALSE;
    }
  jpeg_start_decompress (cinfo);

  const int width = (int) cinfo->output_width;
  const int components = cinfo->output_components;
  reader->image = decoded_image_try_new (cinfo->output_width,
                                         cinfo->output_height);
  reader->row = reader->image ? g_try_malloc ((gsize) width * components) : NULL;
  if (reader->row == NULL)
    {
      g_strlcpy (reader->errors.message, "too large to decode",
                 sizeof reader->errors.message);
      return FALSE;
    }
  while (cinfo->output_scanline < cinfo->output_height)
    {
      guint8 *rgb = reader->image->pixels
                    + (gsize) cinfo->output_scanline * width * 3;
      JSAMPROW row = components == 3 ? rgb : reader->row;
      jpeg_read_scanlines (cinfo, &row, 1);
      if (components == 1)
        for (int x = 0; x < width; x++)
          rgb[3 * x] = rgb[3 * x + 1] = rgb[3 * x + 2] = reader->row[x];
      else if (components == 4)
        cmyk_row_to_rgb (reader->row, rgb, width, cinfo->saw_Adobe_marker);
    }
  jpeg_finish_decompress (cinfo);
  return TRUE;
}

static DecodedImage *
decode_jpeg (const char *path, const guint8 *data, gsize size, GError **error)
{
  /* On the heap: libjpeg keeps pointers into it across the longjmp. */
  JpegReader *reader = g_new0 (JpegReader, 1);
  reader->cinfo.err = jpeg_std_error (&reader->errors.base);
  reader->errors.base.error_exit = on_jpeg_error;
  reader->errors.base.emit_message = on_jpeg_message;

  gboolean ok = jpeg_decode_into (reader, data, size);
  DecodedImage *image = reader->image;
  if (!ok)
    {
      if (reader->errors.truncated)
        g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_FORMAT,
                     "%s: truncated JPEG (the file ends early)", path);
      else if (reader->unsupported)
        g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_FORMAT,
                     "%s: unsupported JPEG colour space (%d components); "
                     "expected grey, YCbCr, RGB, CMYK or YCCK", path,
                     reader->cinfo.num_components);
      else
        g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_FORMAT,
                     "%s: corrupt or unsupported JPEG: %s", path,
                     reader->errors.message);
      decoded_image_free (image);
      image = NULL;
    }
  jpeg_destroy_decompress (&reader->cinfo);
  g_free (reader->row);
  g_free (reader);
  return image;
}

/* ---- by signature ---------------------------------------------------- */

/* Formats worth naming when refusing them. */
static const char *
other_format_name (const guint8 *data, gsize size)
{
  if (size >= 6 && (memcmp (data, "GIF87a", 6) == 0 || memcmp (data, "GIF89a", 6) == 0))
    return "GIF";
  if (size >= 2 && memcmp (data, "BM", 2) == 0)
    return "BMP";
  if (size >= 12 && memcmp (data, "RIFF", 4) == 0 && memcmp (data + 8, "WEBP", 4) == 0)
    return "WebP";
  if (size >= 4 && (memcmp (data, "II*\0", 4) == 0 || memcmp (data, "MM\0*", 4) == 0))
    return "TIFF";
  return NULL;
}

DecodedImage *
image_decode_file (const char *path, GError **error)
{
  gsize size = 0;
  g_autofree guint8 *data = read_whole_file (path, &size, error);
  if (data == NULL)
    return NULL;

  if (size >= sizeof png_signature
      && memcmp (data, png_signature, sizeof png_signature) == 0)
    return decode_png (path, data, size, error);
  if (size >= sizeof jpeg_signature
      && memcmp (data, jpeg_signature, sizeof jpeg_signature) == 0)
    return decode_jpeg (path, data, size, error);

  const char *other = other_format_name (data, size);
  if (other != NULL)
    g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_FORMAT,
                 "%s: %s images are not supported; use PNG or JPEG", path, other);
  else
    g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_FORMAT,
                 "%s: not a PNG or JPEG image", path);
  return NULL;
}
