/*
 * libcurl's multi interface driven by libevent's socket and timer callbacks: many transfers
 * in flight on the event loop, no threads. The HTTP client and the notifier's SMTP client
 * each own one and add their own easy handles to it.
 */
#ifndef DSF_CURL_LOOP_H
#define DSF_CURL_LOOP_H

#include <curl/curl.h>

struct event_base;
struct dsf_curl_loop;

/* Runs on the loop when a transfer ends; the owner finds its state through CURLINFO_PRIVATE
 * and calls dsf_curl_loop_remove before cleaning up the handle. */
typedef void (*dsf_curl_finished)(void *ctx, CURL *easy, CURLcode result);

struct dsf_curl_loop *dsf_curl_loop_new(struct event_base *base, dsf_curl_finished finished,
                                        void *ctx);
/* 0, or -1 when curl refuses the handle. */
int dsf_curl_loop_add(struct dsf_curl_loop *l, CURL *easy);
void dsf_curl_loop_remove(struct dsf_curl_loop *l, CURL *easy);
/* The owner finishes (removes) its transfers first. */
void dsf_curl_loop_free(struct dsf_curl_loop *l);

#endif
