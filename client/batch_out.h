/* batch_out: the batch client's output lines and the resume set.
 *
 * Formats, one line per input ("INPUT RESULT", as the seed asks):
 *   space  1120 2240            1120 ERROR calculation failed: ...
 *   tsv    1120<TAB>2240        1120<TAB>ERROR<TAB>calculation failed: ...
 *   csv    1120,2240            1120,ERROR,"calculation failed: ..."
 *   jsonl  {"input":1120,"result":2240}   {"input":1120,"error":"..."}
 * The input is written as read (it is a JSON number). A result that is a
 * JSON number is written as it came from the server; other text (a task's
 * stdout) is escaped for the format: \n, \t, \r and \\ in space and tsv,
 * quoted in csv, a JSON string in jsonl.
 *
 * The resume set is a multiset of the inputs found in an existing output
 * file (result and error lines alike), so that an input appearing twice in
 * the input is skipped only as often as it was already written. It keeps
 * every such input's text in memory: O(lines already written). */
#ifndef TS_BATCH_OUT_H
#define TS_BATCH_OUT_H

#include <stddef.h>
#include <stdio.h>

#include "buf.h"

enum batch_format { BATCH_FMT_SPACE, BATCH_FMT_TSV, BATCH_FMT_CSV, BATCH_FMT_JSONL };

/* Parses "space", "tsv", "csv" or "jsonl". Returns 0 or -EINVAL. */
int batch_format_parse(const char *name, enum batch_format *out);

/* Appends the line for an input and its result (rlen bytes) to b. */
void batch_out_result(buf *b, enum batch_format f, const char *input, const char *result,
                      size_t rlen);

/* Appends the line for an input that finally failed, with why. */
void batch_out_error(buf *b, enum batch_format f, const char *input, const char *why);

typedef struct batch_done batch_done;

/* Reads the output file f from its start and collects the input of every
 * complete line (a last line without its newline is a write cut short by
 * a kill: it does not count). Sets *keep to the length of the complete
 * lines, where appending must resume, and *lines to their number.
 * Returns 0 and a new set in *out (free with batch_done_free), or -errno. */
int batch_done_load(FILE *f, batch_done **out, long long *keep, long *lines);

/* If the set holds the input (len bytes), removes one occurrence and
 * returns 1; otherwise returns 0. */
int batch_done_take(batch_done *d, const char *input, size_t len);

/* Frees the set; NULL is fine. */
void batch_done_free(batch_done *d);

#endif
