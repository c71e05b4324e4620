/* gen-demo.c - writes advex's bundled demo data set: ten classes of drawn
 * shapes and patterns as 96x96 colour images in the STL-10 binary layout
 * (train_X.bin, train_y.bin, test_X.bin, test_y.bin, class_names.txt), so
 * the STL-10 loader serves it unchanged.
 *
 * Every image is drawn here from a seed; nothing is taken from elsewhere.
 * The same seed gives the same bytes on every run: the generator is our own
 * splitmix64, each image draws from a stream keyed by (seed, split, index)
 * so it does not depend on what was drawn before it, and the pixel noise
 * uses no libm call. Geometry is computed in double and quantized once.
 *
 * Build: cc -std=gnu11 -O2 tools/gen-demo.c -lm -o gen-demo
 */
#define _POSIX_C_SOURCE 200809L	/* clock_gettime, mkdir, PATH_MAX under -std=c11 */

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

enum {
	IMG = 96,			/* image side, pixels */
	PLANE = IMG * IMG,		/* bytes per colour plane */
	IMG_BYTES = 3 * PLANE,		/* one STL-10 image */
	N_CLASSES = 10,
	SUPER = 4,			/* samples per pixel side on shape edges */
	PREVIEW_PER_CLASS = 10,		/* preview grid columns */
	PREVIEW_GAP = 2,		/* pixels between preview cells */
	MIN_IMAGES = N_CLASSES,		/* so that every class is present */
	MAX_IMAGES = 1000000,
	EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2,
};

/* M_PI is not strict C11. */
static const double pi = 3.14159265358979323846;

/* Streams of the generator, one per use, so that adding images to one split
 * changes nothing in the other. */
enum stream { STREAM_TRAIN = 1, STREAM_TEST, STREAM_TRAIN_ORDER, STREAM_TEST_ORDER };

enum shape {
	DISC, RING, SQUARE, TRIANGLE, STAR, CROSS, HEART, ARROW, STRIPES, CHECKERBOARD
};

/* Names in label order (label = index + 1) and how far each class may turn:
 * oriented classes (triangle up, arrow right, heart, plus sign, horizontal
 * stripes) turn a little so they keep their meaning; square and star turn
 * through their whole symmetry; disc and ring do not need to turn. */
static const struct {
	const char *name;
	double max_turn_deg;
} classes[N_CLASSES] = {
	[DISC] = { "disc", 0 },
	[RING] = { "ring", 0 },
	[SQUARE] = { "square", 45 },
	[TRIANGLE] = { "triangle", 20 },
	[STAR] = { "star", 36 },
	[CROSS] = { "cross", 20 },
	[HEART] = { "heart", 20 },
	[ARROW] = { "arrow", 25 },
	[STRIPES] = { "stripes", 12 },
	[CHECKERBOARD] = { "checkerboard", 30 },
};

/* splitmix64: tiny, fast and fully specified, so the stream is the same on
 * every machine (rand() is not). */
struct prng {
	uint64_t s;
};

static uint64_t prng_next(struct prng *r)
{
	uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* A stream for one (seed, stream, index): each key goes through the mixer so
 * that neighbouring indices give unrelated streams. */
static void prng_init(struct prng *r, uint64_t seed, enum stream stream,
		      uint64_t index)
{
	r->s = seed;
	r->s = prng_next(r) ^ (uint64_t)stream;
	r->s = prng_next(r) ^ index;
	r->s = prng_next(r);
}

/* Uniform in [0, 1), 53 bits. */
static double prng_unit(struct prng *r)
{
	return (double)(prng_next(r) >> 11) * 0x1.0p-53;
}

static double prng_range(struct prng *r, double lo, double hi)
{
	return lo + (hi - lo) * prng_unit(r);
}

/* Uniform in 0..n-1 (n small, so the multiply-shift bias is negligible). */
static uint32_t prng_below(struct prng *r, uint32_t n)
{
	return (uint32_t)(((prng_next(r) >> 32) * n) >> 32);
}

/* Roughly standard normal: the sum of four 16-bit uniforms (Irwin-Hall)
 * scaled to unit variance. One draw per value and no libm call, so the noise
 * bytes are identical wherever this runs. */
static double prng_noise(struct prng *r)
{
	uint64_t x = prng_next(r);
	double sum = (double)(x & 0xffff) + (double)(x >> 16 & 0xffff) +
		     (double)(x >> 32 & 0xffff) + (double)(x >> 48);

	return (sum / 65536.0 - 2.0) * 1.7320508075688772;	/* sqrt(3) */
}

/* Everything that decides one image. Coordinates are pixels, x right and y
 * down; shape-local coordinates (u, v) are scaled so the shape fits the unit
 * circle, v down too, so "up" in the drawing code is up on screen. */
struct scene {
	enum shape shape;
	double cx, cy;		/* shape centre */
	double radius;		/* radius of the circle the shape fits in */
	double cos_a, sin_a;	/* rotation of the shape */
	double hole;		/* ring: inner radius, fraction of the outer */
	double period;		/* stripes, checkerboard: cell size */
	double phase_u, phase_v;	/* stripes, checkerboard: offset, cells */
	double star[10][2];	/* star: outline, local coordinates */
	double bg0[3], bg1[3];	/* background colour at both gradient ends */
	double grad_x, grad_y;	/* gradient direction, unit vector */
	double fg[3];		/* foreground colour, 0..255 */
	double noise;		/* pixel noise standard deviation, 0..255 */
};

/* Crossing-number test: the star is not convex. */
static int in_polygon(const double (*pt)[2], int n, double u, double v)
{
	int i, j, in = 0;

	for (i = 0, j = n - 1; i < n; j = i++)
		if ((pt[i][1] > v) != (pt[j][1] > v) &&
		    u < pt[j][0] + (v - pt[j][1]) * (pt[i][0] - pt[j][0]) /
				   (pt[i][1] - pt[j][1]))
			in = !in;
	return in;
}

/* Equilateral, apex up: the apex at (0, -1), the base on v = 0.5. */
static int in_triangle(double u, double v)
{
	return v <= 0.5 && v >= -1.0 + 1.7320508075688772 * fabs(u);
}

/* The classic heart curve (x^2 + y^2 - 1)^3 = x^2 y^3 (y up), scaled and
 * shifted so its bounding box is centred and fits the unit circle. */
static int in_heart(double u, double v)
{
	double x = u * 1.2, y = -v * 1.2 + 0.12;
	double q = x * x + y * y - 1.0;

	return q * q * q - x * x * y * y * y <= 0.0;
}

/* Points right: a shaft and a head that is clearly wider than the shaft. */
static int in_arrow(double u, double v)
{
	double a = fabs(v);

	if (u >= -0.95 && u <= 0.15 && a <= 0.2)
		return 1;
	return u >= 0.1 && u <= 0.95 && a <= 0.62 * (0.95 - u) / 0.85;
}

static int in_cross(double u, double v)
{
	double au = fabs(u), av = fabs(v);

	return (au <= 0.28 && av <= 0.95) || (av <= 0.28 && au <= 0.95);
}

/* Whole-image patterns, (u, v) in cells. Stripes change along v only, the
 * checkerboard along both, so the two never look alike. */
static int in_pattern(enum shape shape, double u, double v)
{
	long row = (long)floor(v), col = (long)floor(u);

	if (shape == STRIPES)
		return (int)(row & 1);
	return (int)((row + col) & 1);
}

/* Whether point (px, py) lies on the foreground. */
static int scene_inside(const struct scene *s, double px, double py)
{
	double dx = px - s->cx, dy = py - s->cy;
	double u = dx * s->cos_a + dy * s->sin_a;
	double v = -dx * s->sin_a + dy * s->cos_a;
	double r2;

	if (s->shape == STRIPES || s->shape == CHECKERBOARD)
		return in_pattern(s->shape, u / s->period + s->phase_u,
				  v / s->period + s->phase_v);
	u /= s->radius;
	v /= s->radius;
	r2 = u * u + v * v;
	switch (s->shape) {
	case DISC: return r2 <= 1.0;
	case RING: return r2 <= 1.0 && r2 >= s->hole * s->hole;
	case SQUARE: return fabs(u) <= 0.7 && fabs(v) <= 0.7;
	case TRIANGLE: return in_triangle(u, v);
	case STAR: return in_polygon(s->star, 10, u, v);
	case CROSS: return in_cross(u, v);
	case HEART: return in_heart(u, v);
	case ARROW: return in_arrow(u, v);
	default: return 0;
	}
}

/* Squared distance between two colours. */
static double color_dist2(const double *a, const double *b)
{
	double d0 = a[0] - b[0], d1 = a[1] - b[1], d2 = a[2] - b[2];

	return d0 * d0 + d1 * d1 + d2 * d2;
}

/* A background that drifts gently from one colour to a nearby one, and a
 * foreground far from both ends so the shape always stands out. */
static void scene_pick_colors(struct scene *s, struct prng *r)
{
	const double min_dist2 = 120.0 * 120.0;
	double angle = prng_range(r, 0.0, 2.0 * pi);
	int c, tries;

	for (c = 0; c < 3; c++) {
		s->bg0[c] = prng_range(r, 0.0, 255.0);
		s->bg1[c] = fmin(255.0, fmax(0.0, s->bg0[c] + prng_range(r, -60.0, 60.0)));
	}
	s->grad_x = cos(angle);
	s->grad_y = sin(angle);
	for (tries = 0; tries < 1000; tries++) {
		for (c = 0; c < 3; c++)
			s->fg[c] = prng_range(r, 0.0, 255.0);
		if (color_dist2(s->fg, s->bg0) >= min_dist2 &&
		    color_dist2(s->fg, s->bg1) >= min_dist2)
			return;
	}
	/* A mid-grey background can leave no colour far enough: take the
	 * opposite corner of the colour cube, the farthest there is. */
	for (c = 0; c < 3; c++)
		s->fg[c] = s->bg0[c] < 128.0 ? 255.0 : 0.0;
}

/* The star's ten outline points: five tips on the unit circle, the first
 * pointing up, and five inner corners between them. */
static void scene_make_star(struct scene *s)
{
	int i;

	for (i = 0; i < 10; i++) {
		double a = -pi / 2 + i * pi / 5;
		double rad = i % 2 ? 0.42 : 1.0;

		s->star[i][0] = rad * cos(a);
		s->star[i][1] = rad * sin(a);
	}
}

/* Size, position and turn. A shape's circle spans 30%..80% of the image and
 * lies wholly inside it, so no shape is cut off into another class's look. */
static void scene_place(struct scene *s, struct prng *r)
{
	double turn = classes[s->shape].max_turn_deg;
	double a = prng_range(r, -turn, turn) * pi / 180.0;
	double lo, hi;

	s->cos_a = cos(a);
	s->sin_a = sin(a);
	s->radius = prng_range(r, 0.30, 0.80) * IMG / 2.0;
	lo = s->radius + 1.0;
	hi = IMG - s->radius - 1.0;
	s->cx = prng_range(r, lo, hi);
	s->cy = prng_range(r, lo, hi);
	s->hole = prng_range(r, 0.50, 0.68);
	/* Patterns fill the image: centre it and vary cell size and phase. */
	s->period = prng_range(r, 8.0, 20.0);
	s->phase_u = prng_range(r, 0.0, 2.0);
	s->phase_v = prng_range(r, 0.0, 2.0);
	if (s->shape == STRIPES || s->shape == CHECKERBOARD) {
		s->cx = IMG / 2.0;
		s->cy = IMG / 2.0;
	}
}

static void scene_new(struct scene *s, enum shape shape, struct prng *r)
{
	memset(s, 0, sizeof *s);
	s->shape = shape;
	scene_pick_colors(s, r);
	scene_place(s, r);
	scene_make_star(s);
	s->noise = prng_range(r, 2.0, 10.0);
}

/* Fraction of each pixel the foreground covers, cover[y][x]. Inside/outside
 * is sampled at the pixel corners first; only pixels whose corners disagree
 * (edges) are supersampled SUPER x SUPER, which keeps the edges smooth at a
 * fraction of the cost. */
static void render_cover(const struct scene *s, float cover[IMG][IMG])
{
	static const double step = 1.0 / SUPER;
	unsigned char corner[IMG + 1][IMG + 1];
	int x, y, i, j;

	for (y = 0; y <= IMG; y++)
		for (x = 0; x <= IMG; x++)
			corner[y][x] = (unsigned char)scene_inside(s, x, y);
	for (y = 0; y < IMG; y++)
		for (x = 0; x < IMG; x++) {
			int n = corner[y][x] + corner[y][x + 1] +
				corner[y + 1][x] + corner[y + 1][x + 1];
			int hits = 0;

			if (n == 0 || n == 4) {
				cover[y][x] = (float)(n / 4);
				continue;
			}
			for (j = 0; j < SUPER; j++)
				for (i = 0; i < SUPER; i++)
					hits += scene_inside(s, x + (i + 0.5) * step,
							     y + (j + 0.5) * step);
			cover[y][x] = (float)hits / (SUPER * SUPER);
		}
}

static unsigned char to_byte(double v)
{
	if (v <= 0.0)
		return 0;
	if (v >= 255.0)
		return 255;
	return (unsigned char)(v + 0.5);
}

/* One image in the STL-10 layout: planes R, G, B, each column-major (byte
 * c*PLANE + x*IMG + y is channel c at column x, row y). */
static void render_image(const struct scene *s, struct prng *r,
			 unsigned char *out)
{
	float cover[IMG][IMG];
	int x, y, c;

	render_cover(s, cover);
	for (x = 0; x < IMG; x++)
		for (y = 0; y < IMG; y++) {
			double t = ((x + 0.5 - IMG / 2.0) * s->grad_x +
				    (y + 0.5 - IMG / 2.0) * s->grad_y) / IMG + 0.5;
			double a = cover[y][x];

			t = fmin(1.0, fmax(0.0, t));
			for (c = 0; c < 3; c++) {
				double bg = s->bg0[c] + (s->bg1[c] - s->bg0[c]) * t;
				double v = bg + (s->fg[c] - bg) * a +
					   s->noise * prng_noise(r);

				out[c * PLANE + x * IMG + y] = to_byte(v);
			}
		}
}

/* A file written under a temporary name and renamed when complete, so a
 * reader never sees a partial file. Errors are reported here, once. */
struct outfile {
	FILE *f;
	char path[PATH_MAX];	/* final name */
	char tmp[PATH_MAX + 8];	/* written here first: path + ".tmp" */
};

static int outfile_fail(const struct outfile *o)
{
	fprintf(stderr, "gen-demo: %s: %s\n", o->path, strerror(errno));
	return -1;
}

static int outfile_open(struct outfile *o, const char *dir, const char *name)
{
	int n = dir ? snprintf(o->path, sizeof o->path, "%s/%s", dir, name)
		    : snprintf(o->path, sizeof o->path, "%s", name);

	o->f = NULL;
	if (n < 0 || (size_t)n >= sizeof o->path) {
		errno = ENAMETOOLONG;
		return outfile_fail(o);
	}
	snprintf(o->tmp, sizeof o->tmp, "%s.tmp", o->path);
	o->f = fopen(o->tmp, "wb");
	return o->f ? 0 : outfile_fail(o);
}

static int outfile_write(struct outfile *o, const void *p, size_t n)
{
	return fwrite(p, 1, n, o->f) == n ? 0 : outfile_fail(o);
}

/* Gives up on the file: the temporary goes, an older complete file stays. */
static void outfile_discard(struct outfile *o)
{
	if (o->f)
		fclose(o->f);
	o->f = NULL;
	remove(o->tmp);
}

static int outfile_commit(struct outfile *o)
{
	int bad = fflush(o->f) != 0 || ferror(o->f);

	bad |= fclose(o->f) != 0;
	o->f = NULL;
	if (bad || rename(o->tmp, o->path) != 0) {
		outfile_fail(o);
		remove(o->tmp);
		return -1;
	}
	return 0;
}

/* Labels 1..10, as even as the count allows, in a seeded random order. */
static void make_labels(unsigned char *labels, int n, struct prng *r)
{
	int i;

	for (i = 0; i < n; i++)
		labels[i] = (unsigned char)(1 + i % N_CLASSES);
	for (i = n - 1; i > 0; i--) {
		uint32_t j = prng_below(r, (uint32_t)i + 1);
		unsigned char t = labels[i];

		labels[i] = labels[j];
		labels[j] = t;
	}
}

/* Keeps the first PREVIEW_PER_CLASS images of each class for the preview. */
struct preview {
	unsigned char *img;	/* N_CLASSES x PREVIEW_PER_CLASS images */
	int count[N_CLASSES];
};

static void preview_keep(struct preview *p, int cls, const unsigned char *img)
{
	if (!p->img || p->count[cls] >= PREVIEW_PER_CLASS)
		return;
	memcpy(p->img + (size_t)(cls * PREVIEW_PER_CLASS + p->count[cls]) * IMG_BYTES,
	       img, IMG_BYTES);
	p->count[cls]++;
}

/* One split: NAME_X.bin and NAME_y.bin with n images. */
static int write_split(const char *dir, const char *name, int n, uint64_t seed,
		       enum stream images, enum stream order, struct preview *pv)
{
	unsigned char *labels = malloc((size_t)n), img[IMG_BYTES];
	struct outfile fx, fy;
	char fname[64];
	struct prng r;
	struct scene s;
	int i, rc = -1;

	if (!labels) {
		fprintf(stderr, "gen-demo: out of memory\n");
		return -1;
	}
	prng_init(&r, seed, order, 0);
	make_labels(labels, n, &r);
	snprintf(fname, sizeof fname, "%s_y.bin", name);
	if (outfile_open(&fy, dir, fname) < 0)
		goto out;
	snprintf(fname, sizeof fname, "%s_X.bin", name);
	if (outfile_open(&fx, dir, fname) < 0) {
		outfile_discard(&fy);
		goto out;
	}
	for (i = 0; i < n; i++) {
		prng_init(&r, seed, images, (uint64_t)i);
		scene_new(&s, (enum shape)(labels[i] - 1), &r);
		render_image(&s, &r, img);
		if (outfile_write(&fx, img, IMG_BYTES) < 0)
			break;
		if (pv)
			preview_keep(pv, labels[i] - 1, img);
	}
	if (i < n || outfile_write(&fy, labels, (size_t)n) < 0) {
		outfile_discard(&fx);
		outfile_discard(&fy);
		goto out;
	}
	if (outfile_commit(&fx) < 0) {
		outfile_discard(&fy);
		goto out;
	}
	rc = outfile_commit(&fy);
out:
	free(labels);
	return rc;
}

static int write_class_names(const char *dir)
{
	struct outfile o;
	int c;

	if (outfile_open(&o, dir, "class_names.txt") < 0)
		return -1;
	for (c = 0; c < N_CLASSES; c++)
		if (fprintf(o.f, "%s\n", classes[c].name) < 0) {
			outfile_fail(&o);
			outfile_discard(&o);
			return -1;
		}
	return outfile_commit(&o);
}

/* A binary PPM: one row per class, its first test images left to right.
 * Pixels are read back with the STL-10 formula, like a loader would. */
static int write_preview(const char *path, const struct preview *p)
{
	const int side = PREVIEW_PER_CLASS * (IMG + PREVIEW_GAP) + PREVIEW_GAP;
	const int height = N_CLASSES * (IMG + PREVIEW_GAP) + PREVIEW_GAP;
	unsigned char *row = malloc((size_t)side * 3);
	struct outfile o;
	int y, x, rc = -1;

	if (!row) {
		fprintf(stderr, "gen-demo: out of memory\n");
		return -1;
	}
	if (outfile_open(&o, NULL, path) < 0)
		goto out;
	if (fprintf(o.f, "P6\n%d %d\n255\n", side, height) < 0) {
		outfile_fail(&o);
		outfile_discard(&o);
		goto out;
	}
	for (y = 0; y < height; y++) {
		int cls = y / (IMG + PREVIEW_GAP), iy = y % (IMG + PREVIEW_GAP) - PREVIEW_GAP;

		for (x = 0; x < side; x++) {
			int k = x / (IMG + PREVIEW_GAP), ix = x % (IMG + PREVIEW_GAP) - PREVIEW_GAP;
			const unsigned char *img;
			int c;

			for (c = 0; c < 3; c++)
				row[x * 3 + c] = 40;	/* dark grey gaps */
			if (ix < 0 || iy < 0 || cls >= N_CLASSES || k >= p->count[cls])
				continue;
			img = p->img + (size_t)(cls * PREVIEW_PER_CLASS + k) * IMG_BYTES;
			for (c = 0; c < 3; c++)
				row[x * 3 + c] = img[c * PLANE + ix * IMG + iy];
		}
		if (outfile_write(&o, row, (size_t)side * 3) < 0) {
			outfile_discard(&o);
			goto out;
		}
	}
	rc = outfile_commit(&o);
out:
	free(row);
	return rc;
}

/* The output directory: made if missing, refused if it is something else. */
static int make_dir(const char *dir)
{
	struct stat st;

	if (mkdir(dir, 0777) == 0)
		return 0;
	if (errno == EEXIST && stat(dir, &st) == 0 && S_ISDIR(st.st_mode))
		return 0;
	if (errno == EEXIST)
		errno = ENOTDIR;
	fprintf(stderr, "gen-demo: %s: %s\n", dir, strerror(errno));
	return -1;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: gen-demo --out DIR [--train N] [--test M] [--seed S] [--preview FILE.ppm]\n\n"
		"Draws advex's demo data set (ten classes of shapes and patterns, 96x96\n"
		"colour) and writes it to DIR in the STL-10 binary layout: train_X.bin,\n"
		"train_y.bin, test_X.bin, test_y.bin, class_names.txt.\n\n"
		"  --out DIR          output directory (made if missing)\n"
		"  --train N          training images, %d..%d (default 5000)\n"
		"  --test M           test images, %d..%d (default 1000)\n"
		"  --seed S           seed, 0..2^64-1 (default 1); same seed, same bytes\n"
		"  --preview FILE     also write a PPM grid: one row per class, its first\n"
		"                     %d test images\n",
		MIN_IMAGES, MAX_IMAGES, MIN_IMAGES, MAX_IMAGES, PREVIEW_PER_CLASS);
}

static int usage_error(const char *msg, const char *arg)
{
	fprintf(stderr, "gen-demo: %s%s%s\ntry 'gen-demo --help'\n", msg,
		arg ? " " : "", arg ? arg : "");
	return EXIT_USAGE;
}

/* A count in MIN_IMAGES..MAX_IMAGES, or -1. */
static int parse_count(const char *s)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < MIN_IMAGES || v > MAX_IMAGES)
		return -1;
	return (int)v;
}

static int parse_seed(const char *s, uint64_t *seed)
{
	char *end;
	unsigned long long v;

	errno = 0;
	if (*s < '0' || *s > '9')
		return -1;
	v = strtoull(s, &end, 10);
	if (errno || *end)
		return -1;
	*seed = (uint64_t)v;
	return 0;
}

struct options {
	const char *out;
	const char *preview;
	int n_train, n_test;
	uint64_t seed;
};

/* Fills o from argv; returns -1 to go on, else the exit status. */
static int parse_options(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
		{ "out", required_argument, NULL, 'o' },
		{ "train", required_argument, NULL, 'n' },
		{ "test", required_argument, NULL, 'm' },
		{ "seed", required_argument, NULL, 's' },
		{ "preview", required_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	int c;

	opterr = 0;	/* one message of our own rather than getopt's and ours */
	while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		switch (c) {
		case 'o': o->out = optarg; break;
		case 'p': o->preview = optarg; break;
		case 'n':
			if ((o->n_train = parse_count(optarg)) < 0)
				return usage_error("--train wants 10..1000000, not", optarg);
			break;
		case 'm':
			if ((o->n_test = parse_count(optarg)) < 0)
				return usage_error("--test wants 10..1000000, not", optarg);
			break;
		case 's':
			if (parse_seed(optarg, &o->seed) < 0)
				return usage_error("--seed wants a non-negative integer, not", optarg);
			break;
		case 'h': usage(stdout); return EXIT_OK;
		case ':': return usage_error("missing value for", argv[optind - 1]);
		default: return usage_error("unknown option", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return usage_error("unexpected argument", argv[optind]);
	if (!o->out)
		return usage_error("--out DIR is required", NULL);
	return -1;
}

static double now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
	struct options o = { .n_train = 5000, .n_test = 1000, .seed = 1 };
	struct preview pv = { 0 };
	double t0 = now_seconds();
	int rc = parse_options(argc, argv, &o);

	if (rc >= 0)
		return rc;
	if (o.preview) {
		pv.img = malloc((size_t)N_CLASSES * PREVIEW_PER_CLASS * IMG_BYTES);
		if (!pv.img) {
			fprintf(stderr, "gen-demo: out of memory\n");
			return EXIT_FAIL;
		}
	}
	rc = EXIT_FAIL;
	if (make_dir(o.out) < 0 ||
	    write_split(o.out, "train", o.n_train, o.seed, STREAM_TRAIN,
			STREAM_TRAIN_ORDER, NULL) < 0 ||
	    write_split(o.out, "test", o.n_test, o.seed, STREAM_TEST,
			STREAM_TEST_ORDER, o.preview ? &pv : NULL) < 0 ||
	    write_class_names(o.out) < 0 ||
	    (o.preview && write_preview(o.preview, &pv) < 0))
		goto out;
	printf("gen-demo: wrote %s: %d train + %d test images, %d classes, seed %llu%s%s, %.2f s\n",
	       o.out, o.n_train, o.n_test, N_CLASSES, (unsigned long long)o.seed,
	       o.preview ? ", preview " : "", o.preview ? o.preview : "",
	       now_seconds() - t0);
	rc = EXIT_OK;
out:
	free(pv.img);
	return rc;
}
