/* httpc: see httpc.h. */
#include "httpc.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

size_t httpc_sink_write(char *data, size_t size, size_t n, void *sink)
{
    httpc_sink *k = sink;
    size_t len = size * n;
    if (k->b->len + len > k->max || buf_append(k->b, data, len) < 0)
        return 0;
    return len;
}

static int httpc_progress(void *user, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    const atomic_int *cancel = user;
    return cancel && atomic_load(cancel) ? 1 : 0;
}

int httpc_request(const char *method, const char *url, const char *body, const char *token,
                  double timeout, const atomic_int *cancel, buf *resp, char *err, size_t errsz)
{
    char cerr[CURL_ERROR_SIZE] = "";
    CURL *h = curl_easy_init();
    if (!h) {
        snprintf(err, errsz, "cannot create a curl handle");
        return -1;
    }
    /* "Expect:" stops curl from waiting for a 100 Continue before bodies
     * over 1 KiB. */
    struct curl_slist *hdrs = curl_slist_append(NULL, "Content-Type: application/json");
    struct curl_slist *h2 = hdrs ? curl_slist_append(hdrs, "Expect:") : NULL;
    if (!h2) {
        curl_slist_free_all(hdrs);
        curl_easy_cleanup(h);
        snprintf(err, errsz, "out of memory");
        return -1;
    }
    hdrs = h2;
    if (token) {
        char *line = NULL;
        if (asprintf(&line, "Authorization: Bearer %s", token) < 0 ||
            !(h2 = curl_slist_append(hdrs, line))) {
            free(line);
            curl_slist_free_all(hdrs);
            curl_easy_cleanup(h);
            snprintf(err, errsz, "out of memory");
            return -1;
        }
        explicit_bzero(line, strlen(line));
        free(line);
        hdrs = h2;
    }
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    if (body) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    }
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)(timeout * 1000));
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    httpc_sink sink = {resp, HTTPC_MAX_RESPONSE};
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, httpc_sink_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &sink);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, cerr);
    if (cancel) {
        curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, httpc_progress);
        curl_easy_setopt(h, CURLOPT_XFERINFODATA, (void *)cancel);
        curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    }
    CURLcode rc = curl_easy_perform(h);
    long status = -1;
    if (rc == CURLE_OK) {
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    } else {
        snprintf(err, errsz, "%s", cerr[0] ? cerr : curl_easy_strerror(rc));
        status = -1;
    }
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(h);
    return (int)status;
}
