/* Frames to network input: letterbox output against the NumPy reference
 * fixtures of tools/make_frame_fixtures.py, box mapping against YOLOv5's
 * scale_coords, and rejection of invalid frames.
 */
#include "ssfpn/ssfpn-frame.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define PIXEL_TOLERANCE 1e-5
#define BOX_TOLERANCE 1e-4

static int passed, failed;

static void
check (gboolean condition, const char *format, ...) G_GNUC_PRINTF (2, 3);

static void
check (gboolean condition, const char *format, ...)
{
  va_list args;

  if (condition)
    {
      passed++;
      return;
    }
  failed++;
  va_start (args, format);
  fputs ("FAIL: ", stdout);
  vprintf (format, args);
  fputc ('\n', stdout);
  va_end (args);
}

static const struct {
  const char *name;
  SsfpnFrameFormat format;
} format_names[] = {
  { "RGB", SSFPN_FRAME_RGB },   { "BGR", SSFPN_FRAME_BGR },
  { "RGBA", SSFPN_FRAME_RGBA }, { "BGRA", SSFPN_FRAME_BGRA },
  { "RGBx", SSFPN_FRAME_RGBX }, { "BGRx", SSFPN_FRAME_BGRX },
  { "NV12", SSFPN_FRAME_NV12 }, { "I420", SSFPN_FRAME_I420 },
};

#define N_FORMATS G_N_ELEMENTS (format_names)

static int
format_index (const char *name)
{
  for (guint i = 0; i < N_FORMATS; i++)
    if (g_strcmp0 (name, format_names[i].name) == 0)
      return (int) i;
  return -1;
}

/* ---- fixtures -------------------------------------------------------- */

typedef struct {
  char *name;
  GKeyFile *keys;
  guint8 *bytes;
  gsize n_bytes;
  float *expected;
  gsize n_expected;
  SsfpnFrame frame;
  int format_index; /* into format_names */
  int input_width, input_height;
} Fixture;

static void
fixture_clear (Fixture *f)
{
  g_free (f->name);
  if (f->keys != NULL)
    g_key_file_unref (f->keys);
  g_free (f->bytes);
  g_free (f->expected);
}

/* Reads @path into an exactly sized buffer, so that AddressSanitizer sees
 * any read past the end of a frame. */
static guint8 *
read_exact (const char *path, gsize *length, GError **error)
{
  char *contents;
  guint8 *copy;

  if (!g_file_get_contents (path, &contents, length, error))
    return NULL;
  copy = g_memdup2 (contents, *length);
  g_free (contents);
  return copy;
}

static gboolean
fixture_load (Fixture *f, const char *dir, const char *file, GError **error)
{
  g_autofree char *path = g_build_filename (dir, file, NULL);
  g_autofree char *format = NULL, *matrix = NULL, *range = NULL;
  g_autofree char *frame_path = NULL, *expected_path = NULL;
  g_autofree int *strides = NULL, *offsets = NULL;
  gsize n_strides, n_offsets, expected_bytes;
  int index, size;

  memset (f, 0, sizeof *f);
  f->name = g_strndup (file, strlen (file) - strlen (".fixture"));
  f->keys = g_key_file_new ();
  if (!g_key_file_load_from_file (f->keys, path, G_KEY_FILE_NONE, error))
    return FALSE;

  format = g_key_file_get_string (f->keys, "frame", "format", error);
  if (format == NULL)
    return FALSE;
  index = format_index (format);
  if (index < 0)
    {
      g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_FORMAT,
                   "%s: unknown format %s", path, format);
      return FALSE;
    }
  f->format_index = index;
  f->frame.format = format_names[index].format;
  f->frame.width = g_key_file_get_integer (f->keys, "frame", "width", NULL);
  f->frame.height = g_key_file_get_integer (f->keys, "frame", "height", NULL);
  matrix = g_key_file_get_string (f->keys, "frame", "matrix", NULL);
  range = g_key_file_get_string (f->keys, "frame", "range", NULL);
  f->frame.matrix = g_strcmp0 (matrix, "bt709") == 0
                    ? SSFPN_COLOR_MATRIX_BT709 : SSFPN_COLOR_MATRIX_BT601;
  f->frame.range = g_strcmp0 (range, "limited") == 0
                   ? SSFPN_COLOR_RANGE_LIMITED : SSFPN_COLOR_RANGE_FULL;
  size = g_key_file_get_integer (f->keys, "frame", "size", NULL);

  strides = g_key_file_get_integer_list (f->keys, "frame", "strides",
                                         &n_strides, error);
  if (strides == NULL)
    return FALSE;
  offsets = g_key_file_get_integer_list (f->keys, "frame", "offsets",
                                         &n_offsets, error);
  if (offsets == NULL)
    return FALSE;
  if (n_strides != n_offsets
      || (int) n_strides != ssfpn_frame_format_n_planes (f->frame.format))
    {
      g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_FORMAT,
                   "%s: %zu strides and %zu offsets for %s", path,
                   n_strides, n_offsets, format);
      return FALSE;
    }

  frame_path = g_strdup_printf ("%s/%s.frame", dir, f->name);
  f->bytes = read_exact (frame_path, &f->n_bytes, error);
  if (f->bytes == NULL)
    return FALSE;
  if ((int) f->n_bytes != size)
    {
      g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_FORMAT,
                   "%s: %zu bytes, the fixture says %d", frame_path,
                   f->n_bytes, size);
      return FALSE;
    }
  for (gsize p = 0; p < n_strides; p++)
    {
      if (offsets[p] < 0 || offsets[p] >= size)
        {
          g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_FORMAT,
                       "%s: plane %zu offset %d outside %d bytes", path, p,
                       offsets[p], size);
          return FALSE;
        }
      f->frame.planes[p] = f->bytes + offsets[p];
      f->frame.strides[p] = strides[p];
    }

  f->input_width = g_key_file_get_integer (f->keys, "letterbox", "input_width", NULL);
  f->input_height = g_key_file_get_integer (f->keys, "letterbox", "input_height", NULL);
  expected_path = g_strdup_printf ("%s/%s.expected", dir, f->name);
  f->expected = (float *) read_exact (expected_path, &expected_bytes, error);
  if (f->expected == NULL)
    return FALSE;
  f->n_expected = expected_bytes / sizeof (float);
  if (f->input_width <= 0 || f->input_height <= 0
      || expected_bytes != 3 * sizeof (float) * f->input_width * f->input_height)
    {
      g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_FORMAT,
                   "%s: %zu bytes do not hold a 3x%dx%d float32 input",
                   expected_path, expected_bytes, f->input_height,
                   f->input_width);
      return FALSE;
    }
  return TRUE;
}

static void
check_transform (const Fixture *f, const SsfpnLetterboxTransform *t)
{
  static const char *integers[] = { "resized_width", "resized_height", "left", "top" };
  int actual[] = { t->resized_width, t->resized_height, t->left, t->top };
  static const char *doubles[] = { "scale", "pad_x", "pad_y" };
  double actual_d[] = { t->scale, t->pad_x, t->pad_y };

  for (guint i = 0; i < G_N_ELEMENTS (integers); i++)
    {
      int want = g_key_file_get_integer (f->keys, "letterbox", integers[i], NULL);
      check (actual[i] == want, "%s: %s %d, reference %d", f->name,
             integers[i], actual[i], want);
    }
  for (guint i = 0; i < G_N_ELEMENTS (doubles); i++)
    {
      double want = g_key_file_get_double (f->keys, "letterbox", doubles[i], NULL);
      check (fabs (actual_d[i] - want) <= 1e-12 * MAX (1.0, fabs (want)),
             "%s: %s %.17g, reference %.17g", f->name, doubles[i],
             actual_d[i], want);
    }
}

static void
check_pixels (const Fixture *f, const float *actual)
{
  double worst = 0.0;
  gsize worst_at = 0;

  for (gsize i = 0; i < f->n_expected; i++)
    {
      /* NaN (an element never written) fails the comparison below. */
      double error = fabs ((double) actual[i] - f->expected[i]);
      if (!(error <= worst))
        {
          worst = isnan (error) ? INFINITY : error;
          worst_at = i;
        }
    }
  printf ("%s: max abs error %.3g\n", f->name, worst);
  check (worst <= PIXEL_TOLERANCE,
         "%s: max abs error %g at channel %zu row %zu column %zu "
         "(got %.8f, reference %.8f)", f->name, worst,
         worst_at / ((gsize) f->input_width * f->input_height),
         worst_at / f->input_width % f->input_height,
         worst_at % f->input_width, actual[worst_at], f->expected[worst_at]);
}

static void
check_boxes (const Fixture *f, const SsfpnLetterboxTransform *t)
{
  g_autofree double *input = NULL, *frame = NULL;
  gsize n_input = 0, n_frame = 0;

  input = g_key_file_get_double_list (f->keys, "boxes", "input", &n_input, NULL);
  frame = g_key_file_get_double_list (f->keys, "boxes", "frame", &n_frame, NULL);
  check (input != NULL && n_input > 0 && n_input == n_frame && n_input % 4 == 0,
         "%s: boxes missing or inconsistent (%zu, %zu)", f->name, n_input,
         n_frame);
  if (input == NULL || frame == NULL || n_input != n_frame)
    return;

  for (gsize b = 0; b + 4 <= n_input; b += 4)
    {
      float in[4], out[4];
      double worst = 0.0;

      for (int i = 0; i < 4; i++)
        in[i] = (float) input[b + i];
      ssfpn_letterbox_box_to_frame (t, in, out);
      for (int i = 0; i < 4; i++)
        worst = MAX (worst, fabs (out[i] - frame[b + i]));
      check (worst <= BOX_TOLERANCE,
             "%s: box %zu maps to (%g, %g, %g, %g), scale_coords gives "
             "(%g, %g, %g, %g)", f->name, b / 4, out[0], out[1], out[2],
             out[3], frame[b], frame[b + 1], frame[b + 2], frame[b + 3]);
    }
}

static void
run_fixture (const char *dir, const char *file, gboolean *seen_formats)
{
  Fixture f;
  g_autoptr (GError) error = NULL;
  SsfpnLetterbox *letterbox = NULL;
  float *actual = NULL;

  if (!fixture_load (&f, dir, file, &error))
    {
      check (FALSE, "%s: %s", file, error->message);
      goto out;
    }
  seen_formats[f.format_index] = TRUE;

  letterbox = ssfpn_letterbox_new (f.frame.width, f.frame.height,
                                   f.input_width, f.input_height, &error);
  check (letterbox != NULL, "%s: letterbox_new: %s", f.name,
         error ? error->message : "");
  if (letterbox == NULL)
    goto out;
  check_transform (&f, ssfpn_letterbox_get_transform (letterbox));
  check_boxes (&f, ssfpn_letterbox_get_transform (letterbox));

  /* NaN everywhere first: an element the run forgets stays NaN and fails. */
  actual = g_new (float, f.n_expected);
  for (gsize i = 0; i < f.n_expected; i++)
    actual[i] = NAN;
  check (ssfpn_letterbox_run (letterbox, &f.frame, actual, &error),
         "%s: run: %s", f.name, error ? error->message : "");
  if (error == NULL)
    check_pixels (&f, actual);

out:
  g_free (actual);
  ssfpn_letterbox_free (letterbox);
  fixture_clear (&f);
}

static void
test_fixtures (void)
{
  g_autofree char *dir = g_build_filename (SSFPN_TEST_DATA, "frames", NULL);
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) files = g_ptr_array_new_with_free_func (g_free);
  gboolean seen_formats[N_FORMATS] = { FALSE };
  GDir *listing;
  const char *file;

  listing = g_dir_open (dir, 0, &error);
  check (listing != NULL, "fixtures: %s", error ? error->message : "");
  if (listing == NULL)
    return;
  while ((file = g_dir_read_name (listing)) != NULL)
    if (g_str_has_suffix (file, ".fixture"))
      g_ptr_array_add (files, g_strdup (file));
  g_dir_close (listing);

  check (files->len > 0, "fixtures: none in %s; run tools/make_frame_fixtures.py", dir);
  for (guint i = 0; i < files->len; i++)
    run_fixture (dir, files->pdata[i], seen_formats);
  for (guint i = 0; i < N_FORMATS; i++)
    check (seen_formats[i], "fixtures: no %s frame in %s", format_names[i].name, dir);
  printf ("%u fixtures\n", files->len);
}

/* ---- geometry and boxes ---------------------------------------------- */

static void
test_geometry (void)
{
  SsfpnLetterboxTransform t = { 0 };
  g_autoptr (GError) error = NULL;
  gboolean ok;

  /* 5 x 2.5 = 12.5 rounds to even, as Python's round does. */
  ok = ssfpn_letterbox_transform_init (&t, 4, 5, 10, 20, NULL);
  check (ok && t.resized_width == 10 && t.resized_height == 12 && t.top == 4
         && t.left == 0, "geometry: 4x5 into 10x20 gives %dx%d at (%d, %d)",
         t.resized_width, t.resized_height, t.left, t.top);

  /* 1920x1080 into 640x640: 640x360, 140 rows above and below. */
  ok = ssfpn_letterbox_transform_init (&t, 1920, 1080, 640, 640, NULL);
  check (ok && t.resized_width == 640 && t.resized_height == 360
         && t.top == 140 && fabs (t.scale - 1.0 / 3.0) < 1e-15
         && t.pad_y == 140.0,
         "geometry: 1920x1080 into 640x640 gives %dx%d, top %d, scale %g",
         t.resized_width, t.resized_height, t.top, t.scale);

  /* Odd padding: the extra row goes to the bottom. */
  ok = ssfpn_letterbox_transform_init (&t, 640, 479, 640, 640, NULL);
  check (ok && t.resized_height == 479 && t.top == 80,
         "geometry: 640x479 into 640x640 gives top %d", t.top);

  ok = ssfpn_letterbox_transform_init (&t, 0, 10, 640, 640, &error);
  check (!ok && g_error_matches (error, SSFPN_ERROR, SSFPN_ERROR_ARGUMENT),
         "geometry: a 0x10 frame is accepted");
  g_clear_error (&error);
  ok = ssfpn_letterbox_transform_init (&t, 10, 10, 640, -1, &error);
  check (!ok && g_error_matches (error, SSFPN_ERROR, SSFPN_ERROR_ARGUMENT),
         "geometry: a 640x-1 input is accepted");
  g_clear_error (&error);
  /* 1 x 0.064 rounds to 0 columns. */
  ok = ssfpn_letterbox_transform_init (&t, 1, 10000, 640, 640, &error);
  check (!ok && g_error_matches (error, SSFPN_ERROR, SSFPN_ERROR_ARGUMENT),
         "geometry: a 1x10000 frame is accepted");
  if (error != NULL)
    printf ("expected: %s\n", error->message);
  g_clear_error (&error);
  check (ssfpn_letterbox_new (1, 10000, 640, 640, &error) == NULL
         && error != NULL, "geometry: letterbox_new takes a 1x10000 frame");
}

static void
test_box_round_trips (void)
{
  static const int sizes[][4] = {
    { 1920, 1080, 640, 640 }, { 37, 23, 64, 64 }, { 480, 640, 320, 256 },
    { 333, 199, 160, 128 }, { 64, 48, 64, 64 },
  };
  GRand *rand = g_rand_new_with_seed (7);

  for (guint s = 0; s < G_N_ELEMENTS (sizes); s++)
    {
      SsfpnLetterboxTransform t;
      int w = sizes[s][0], h = sizes[s][1];
      double worst = 0.0;

      ssfpn_letterbox_transform_init (&t, w, h, sizes[s][2], sizes[s][3], NULL);
      for (int i = 0; i < 100; i++)
        {
          float box[4], input[4], back[4];
          float ax = g_rand_double_range (rand, 0, w);
          float bx = g_rand_double_range (rand, 0, w);
          float ay = g_rand_double_range (rand, 0, h);
          float by = g_rand_double_range (rand, 0, h);

          box[0] = MIN (ax, bx), box[2] = MAX (ax, bx);
          box[1] = MIN (ay, by), box[3] = MAX (ay, by);
          ssfpn_letterbox_box_to_input (&t, box, input);
          ssfpn_letterbox_box_to_frame (&t, input, back);
          for (int k = 0; k < 4; k++)
            worst = MAX (worst, fabs (back[k] - box[k]) / MAX (w, h));
        }
      check (worst < 1e-6, "boxes %dx%d: round trip relative error %g",
             w, h, worst);

      /* The frame's corners land on the picture's edges in the input. */
      {
        float corners[4] = { 0, 0, w, h }, input[4];
        ssfpn_letterbox_box_to_input (&t, corners, input);
        check (fabs (input[0] - t.pad_x) < 1e-4 && fabs (input[1] - t.pad_y) < 1e-4
               && fabs (input[2] - (t.input_width - t.pad_x)) < 1e-3
               && fabs (input[3] - (t.input_height - t.pad_y)) < 1e-3,
               "boxes %dx%d: frame corners map to (%g, %g, %g, %g)", w, h,
               input[0], input[1], input[2], input[3]);
      }

      /* A box covering the whole input and more clips to the frame. */
      {
        float huge[4] = { -1e4f, -1e4f, 1e4f, 1e4f }, out[4];
        ssfpn_letterbox_box_to_frame (&t, huge, out);
        check (out[0] == 0 && out[1] == 0 && out[2] == w && out[3] == h,
               "boxes %dx%d: clipped to (%g, %g, %g, %g)", w, h, out[0],
               out[1], out[2], out[3]);
      }
    }
  g_rand_free (rand);
}

/* ---- invalid frames -------------------------------------------------- */

/* @frame must fail the run; it must fail ssfpn_frame_check as well unless
 * @frame_is_valid (a valid frame of the wrong size). */
static void
expect_rejected (const SsfpnLetterbox *letterbox, const SsfpnFrame *frame,
                 gboolean frame_is_valid, const char *what)
{
  g_autoptr (GError) error = NULL;
  float dst[3 * 16 * 16];
  gboolean untouched = TRUE;

  for (guint i = 0; i < G_N_ELEMENTS (dst); i++)
    dst[i] = -1.0f;
  check (ssfpn_frame_check (frame, NULL) == frame_is_valid,
         "invalid: frame_check %s %s", frame_is_valid ? "rejects" : "accepts",
         what);
  check (!ssfpn_letterbox_run (letterbox, frame, dst, &error)
         && g_error_matches (error, SSFPN_ERROR, SSFPN_ERROR_ARGUMENT),
         "invalid: %s is not rejected with an argument error", what);
  for (guint i = 0; i < G_N_ELEMENTS (dst); i++)
    untouched = untouched && dst[i] == -1.0f;
  check (untouched, "invalid: %s wrote output", what);
  if (error != NULL)
    printf ("expected: %s\n", error->message);
}

static void
test_invalid_frames (void)
{
  /* A valid 7x5 I420 frame (chroma 4x3), then one defect at a time. */
  guint8 luma[5 * 7] = { 0 }, u[3 * 4] = { 0 }, v[3 * 4] = { 0 };
  guint8 uv[3 * 8] = { 0 }, rgb[5 * 21] = { 0 };
  const SsfpnFrame i420 = {
    .format = SSFPN_FRAME_I420, .width = 7, .height = 5,
    .planes = { luma, u, v }, .strides = { 7, 4, 4 },
  };
  const SsfpnFrame nv12 = {
    .format = SSFPN_FRAME_NV12, .width = 7, .height = 5,
    .planes = { luma, uv }, .strides = { 7, 8 },
  };
  const SsfpnFrame packed = {
    .format = SSFPN_FRAME_RGB, .width = 7, .height = 5,
    .planes = { rgb }, .strides = { 21 },
  };
  g_autoptr (GError) error = NULL;
  SsfpnLetterbox *letterbox = ssfpn_letterbox_new (7, 5, 16, 16, &error);
  SsfpnFrame frame;
  float dst[3 * 16 * 16];

  check (letterbox != NULL, "invalid: letterbox_new: %s",
         error ? error->message : "");
  if (letterbox == NULL)
    return;

  /* The unmodified frames pass, so each rejection below is for its defect. */
  check (ssfpn_letterbox_run (letterbox, &i420, dst, NULL)
         && ssfpn_letterbox_run (letterbox, &nv12, dst, NULL)
         && ssfpn_letterbox_run (letterbox, &packed, dst, NULL),
         "invalid: the valid frames are rejected");

  frame = i420, frame.width = 0;
  expect_rejected (letterbox, &frame, FALSE, "a zero width");
  frame = i420, frame.height = -5;
  expect_rejected (letterbox, &frame, FALSE, "a negative height");
  frame = i420, frame.planes[0] = NULL;
  expect_rejected (letterbox, &frame, FALSE, "a NULL luma plane");
  frame = i420, frame.planes[2] = NULL;
  expect_rejected (letterbox, &frame, FALSE, "a NULL V plane");
  frame = nv12, frame.planes[1] = NULL;
  expect_rejected (letterbox, &frame, FALSE, "a NULL UV plane");
  frame = packed, frame.planes[0] = NULL;
  expect_rejected (letterbox, &frame, FALSE, "a NULL RGB plane");
  frame = i420, frame.strides[0] = 6;
  expect_rejected (letterbox, &frame, FALSE, "a luma stride of 6 for width 7");
  frame = i420, frame.strides[1] = 3;
  expect_rejected (letterbox, &frame, FALSE, "a U stride of 3 for width 7");
  /* Odd width: the UV row holds ceil(7 / 2) = 4 pairs, 8 bytes. */
  frame = nv12, frame.strides[1] = 7;
  expect_rejected (letterbox, &frame, FALSE, "an NV12 UV stride of 7 for width 7");
  frame = packed, frame.strides[0] = 20;
  expect_rejected (letterbox, &frame, FALSE, "an RGB stride of 20 for width 7");
  frame = packed, frame.format = SSFPN_FRAME_RGBA;
  expect_rejected (letterbox, &frame, FALSE, "an RGBA stride of 21 for width 7");
  frame = packed, frame.strides[0] = -21;
  expect_rejected (letterbox, &frame, FALSE, "a negative stride");
  frame = packed, frame.format = (SsfpnFrameFormat) 99;
  expect_rejected (letterbox, &frame, FALSE, "an unknown format");
  frame = i420, frame.matrix = (SsfpnColorMatrix) 5;
  expect_rejected (letterbox, &frame, FALSE, "an unknown matrix");
  frame = i420, frame.range = (SsfpnColorRange) 5;
  expect_rejected (letterbox, &frame, FALSE, "an unknown range");

  /* Valid, but not the size the letterbox was made for. */
  frame = i420, frame.width = 6;
  expect_rejected (letterbox, &frame, TRUE, "a 6x5 frame for a 7x5 letterbox");

  ssfpn_letterbox_free (letterbox);
}

/* ---- speed ----------------------------------------------------------- */

/* Not a pass/fail check: prints the cost of a 1080p NV12 frame so that
 * regressions show in the test log. */
static void
report_speed (void)
{
  const int width = 1920, height = 1080, runs = 10;
  g_autofree guint8 *bytes = g_malloc (width * height * 3 / 2);
  g_autofree float *dst = g_new (float, 3 * 640 * 640);
  SsfpnFrame frame = {
    .format = SSFPN_FRAME_NV12, .width = width, .height = height,
    .planes = { bytes, bytes + width * height }, .strides = { width, width },
  };
  SsfpnLetterbox *letterbox = ssfpn_letterbox_new (width, height, 640, 640, NULL);
  gint64 start;

  for (int i = 0; i < width * height * 3 / 2; i++)
    bytes[i] = (guint8) (i * 7 + i / width);
  start = g_get_monotonic_time ();
  for (int i = 0; i < runs; i++)
    ssfpn_letterbox_run (letterbox, &frame, dst, NULL);
  printf ("NV12 1920x1080 to 640x640: %.2f ms per frame\n",
          (g_get_monotonic_time () - start) / 1000.0 / runs);
  ssfpn_letterbox_free (letterbox);
}

int
main (void)
{
  test_fixtures ();
  test_geometry ();
  test_box_round_trips ();
  test_invalid_frames ();
  report_speed ();
  printf ("%d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}
