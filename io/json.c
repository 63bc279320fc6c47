/* Python's JSON tokens that jansson refuses, through jansson (see json.h). */
#include "io/json.h"
#include "io/fs.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A token becomes the string "\u0000halo:TOKEN": the NUL keeps it apart
 * from any string a person writes. */
#define MARK "\"\\u0000halo:"
static const char *const tokens[] = {"-Infinity", "Infinity", "NaN"};

static int word_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == '.' || c == '+' || c == '-';
}

/* The length of the JSON number at s (n bytes), or 0; *real when it has
 * a fraction or an exponent. */
static size_t number_len(const char *s, size_t n, int *real)
{
	size_t i = s[0] == '-', k;
	*real = 0;
	if (i >= n || s[i] < '0' || s[i] > '9')
		return 0;
	if (s[i++] != '0') /* no leading zeros */
		while (i < n && s[i] >= '0' && s[i] <= '9')
			i++;
	if (i < n && s[i] == '.') {
		for (k = ++i; i < n && s[i] >= '0' && s[i] <= '9'; i++)
			;
		if (i == k)
			return 0;
		*real = 1;
	}
	if (i < n && (s[i] == 'e' || s[i] == 'E')) {
		i += 1 + (i + 1 < n && (s[i + 1] == '+' || s[i + 1] == '-'));
		for (k = i; i < n && s[i] >= '0' && s[i] <= '9'; i++)
			;
		if (i == k)
			return 0;
		*real = 1;
	}
	return i;
}

/* The length of the token at text[i] outside strings to mark (0: none):
 * NaN, Infinity, -Infinity, or a number python writes and jansson
 * refuses: an integer beyond int64 (a uint64 id in .zattrs) or a real
 * beyond double's range (1e400, which python reads as inf). Marked, it is
 * written back as it was; an integer read as a real lost digits, and
 * reading the whole file so made every integer in it a real. */
static size_t token_at(const char *text, size_t len, size_t i)
{
	if (i > 0 && word_char(text[i - 1]))
		return 0;
	for (size_t t = 0; t < sizeof tokens / sizeof *tokens; t++) {
		size_t n = strlen(tokens[t]);
		if (len - i >= n && !memcmp(text + i, tokens[t], n) &&
		    (i + n == len || !word_char(text[i + n])))
			return n;
	}
	int real;
	size_t n = number_len(text + i, len - i, &real);
	if (!n || (i + n < len && word_char(text[i + n])))
		return 0; /* none, or not one JSON allows: jansson says why */
	if (!real) {
		const char *digits = text + i + (text[i] == '-');
		size_t nd = n - (text[i] == '-');
		const char *most = text[i] == '-' ? "9223372036854775808" : "9223372036854775807";
		return nd > 19 || (nd == 19 && memcmp(digits, most, 19) > 0) ? n : 0;
	}
	char small[64], *num = n < sizeof small ? small : malloc(n + 1);
	if (!num)
		return 0;
	memcpy(num, text + i, n);
	num[n] = '\0';
	errno = 0;
	double v = strtod(num, NULL);
	int over = errno == ERANGE && isinf(v);
	if (num != small)
		free(num);
	return over ? n : 0;
}

/* Copies text into out (when not NULL) with the tokens marked; returns the
 * length. */
static size_t mark(const char *text, size_t len, char *out)
{
	size_t n = 0, ml = strlen(MARK);
	int in_string = 0;
	for (size_t i = 0; i < len; i++) {
		size_t tl = in_string || text[i] == '"' ? 0 : token_at(text, len, i);
		if (tl) {
			if (out) {
				memcpy(out + n, MARK, ml);
				memcpy(out + n + ml, text + i, tl);
				out[n + ml + tl] = '"';
			}
			n += ml + tl + 1;
			i += tl - 1;
			continue;
		}
		if (in_string && text[i] == '\\' && i + 1 < len) {
			if (out)
				out[n] = text[i];
			n++, i++; /* the escaped character is copied below */
		} else if (text[i] == '"') {
			in_string = !in_string;
		}
		if (out)
			out[n] = text[i];
		n++;
	}
	return n;
}

/* Turns the marked strings in JSON text back into bare tokens, in place. */
static void unmark(char *text)
{
	size_t ml = strlen(MARK), w = 0;
	for (size_t r = 0; text[r];) {
		size_t tl = 0;
		if (!strncmp(text + r, MARK, ml) && (r == 0 || text[r - 1] != '\\')) {
			/* Only what mark() marks: another string keeps its text. */
			const char *tok = text + r + ml, *close = strchr(tok, '"');
			tl = close ? (size_t)(close - tok) : 0;
			tl = tl && token_at(tok, tl, 0) == tl ? tl : 0;
		}
		if (tl) {
			memmove(text + w, text + r + ml, tl);
			w += tl;
			r += ml + tl + 1;
		} else {
			text[w++] = text[r++];
		}
	}
	text[w] = '\0';
}

/* Python's json reads a NUL in a string too; jansson needs the flag. */
#define LOAD_FLAGS (JSON_DECODE_ANY | JSON_ALLOW_NUL)

json_t *halo_json_loadb(const char *text, size_t len, json_error_t *je)
{
	size_t n = mark(text, len, NULL);
	if (n == len)
		return json_loadb(text, len, LOAD_FLAGS, je);
	char *buf = malloc(n);
	if (!buf) {
		if (je) {
			memset(je, 0, sizeof *je);
			snprintf(je->text, sizeof je->text, "out of memory");
		}
		return NULL;
	}
	mark(text, len, buf);
	json_t *j = json_loadb(buf, n, LOAD_FLAGS, je);
	free(buf);
	if (!j && je) /* its message quotes the text near the fault */
		unmark(je->text);
	return j;
}

char *halo_json_dumps(const json_t *j, size_t flags)
{
	char *text = json_dumps(j, flags);
	if (text)
		unmark(text);
	return text;
}

static const char raw[] = "\0halo:"; /* MARK as a string's bytes */

const char *halo_json_marked_token(const json_t *v)
{
	size_t rl = sizeof raw - 1, len = json_string_length(v);
	const char *s = json_string_value(v);
	if (!s || len <= rl || memcmp(s, raw, rl) != 0 || token_at(s + rl, len - rl, 0) != len - rl)
		return NULL;
	return s + rl;
}

json_t *halo_json_marked(const char *token)
{
	char buf[96];
	size_t rl = sizeof raw - 1, tl = strlen(token);
	if (tl > sizeof buf - rl)
		return NULL;
	memcpy(buf, raw, rl);
	memcpy(buf + rl, token, tl);
	return json_stringn(buf, rl + tl);
}

int halo_json_marked_number(const json_t *v, double *out)
{
	const char *tok = halo_json_marked_token(v);
	if (!tok)
		return 0;
	for (size_t t = 0; t < sizeof tokens / sizeof *tokens; t++)
		if (!strcmp(tok, tokens[t])) {
			*out = t == 0 ? -INFINITY : t == 1 ? INFINITY : NAN;
			return 1;
		}
	*out = strtod(tok, NULL); /* a number marked: the string ends after it */
	return 1;
}

int halo_json_load_file(const char *file, json_t **out, halo_error_t *err)
{
	void *data;
	size_t len;
	halo_error_t e2 = {0};
	int rc = halo_fs_read(file, &data, &len, &e2);
	if (rc == HALO_ENOENT)
		return rc;
	if (rc) {
		*err = e2;
		return rc;
	}
	json_error_t je;
	*out = halo_json_loadb(data, len, &je);
	free(data);
	if (!*out)
		return halo_error_set(err, HALO_EFORMAT, "%s: malformed JSON at line %d: %s", file,
				      je.line, je.text);
	return HALO_OK;
}

json_t *halo_json_strict_copy(const json_t *j)
{
	const char *tok = halo_json_marked_token(j);
	if (tok && (!strcmp(tok, "NaN") || !strcmp(tok, "Infinity") || !strcmp(tok, "-Infinity")))
		return json_string(tok);
	json_t *out = NULL;
	if (json_is_object(j)) {
		const char *k;
		json_t *v;
		out = json_object();
		json_object_foreach((json_t *)j, k, v)
			json_object_set_new(out, k, halo_json_strict_copy(v));
	} else if (json_is_array(j)) {
		size_t i;
		json_t *v;
		out = json_array();
		json_array_foreach(j, i, v)
			json_array_append_new(out, halo_json_strict_copy(v));
	} else {
		out = json_deep_copy(j);
	}
	return out;
}
