/* The scraper's self-metrics (/metrics): what it scraped, took, rejected and published. */
#define DSF_MODULE "scraper"
#include "scraper/scraper.h"

static const char *const result_labels[SCRAPE_RESULTS] = {
    [SCRAPE_OK] = "ok",
    [SCRAPE_TIMEOUT] = "timeout",
    [SCRAPE_HTTP_ERROR] = "http_error",
    [SCRAPE_REFUSED] = "refused",
    [SCRAPE_TOO_LARGE] = "too_large",
    [SCRAPE_TLS] = "tls",
    [SCRAPE_ERROR] = "error",
};

static const char *const reject_labels[REJECT_REASONS] = {
    [REJECT_PARSE] = "parse",      [REJECT_RENDER] = "not_representable",
    [REJECT_LP] = "line_protocol", [REJECT_TOO_LONG] = "too_long",
    [REJECT_LABELS] = "labels",
};

static double count_pending(void *arg)
{
    return (double)targets_count(arg, TARGET_PENDING);
}
static double count_up(void *arg)
{
    return (double)targets_count(arg, TARGET_UP);
}
static double count_down(void *arg)
{
    return (double)targets_count(arg, TARGET_DOWN);
}

void scraper_add_metrics(struct scraper *s)
{
    struct dsf_metrics *m = &s->metrics;
    struct scraper_stats *st = &s->stats;
    metrics_add_u64_by(m, "damselfly_scraper_scrapes_total", DSF_COUNTER,
                       "Scrapes by result: ok, timeout, http_error (an answer but not 2xx), "
                       "refused (no connection), too_large (past scrape.max_body), error.",
                       "result", result_labels, SCRAPE_RESULTS, st->scrapes);
    metrics_add_u64(m, "damselfly_scraper_samples_total", DSF_COUNTER,
                    "Samples (exporters) and lines (agents) received in good scrapes.", NULL,
                    &st->samples_in);
    metrics_add_u64_by(m, "damselfly_scraper_samples_rejected_total", DSF_COUNTER,
                       "Samples and lines not published: parse (not exposition text), "
                       "not_representable (NaN, infinities, a name line protocol cannot carry), "
                       "line_protocol (an agent's line that is not line protocol), too_long "
                       "(longer than scrape.max_message), labels (too many or too long).",
                       "reason", reject_labels, REJECT_REASONS, st->rejected);
    metrics_add_u64(m, "damselfly_scraper_lines_published_total", DSF_COUNTER,
                    "Lines handed to the bus.", NULL, &st->lines_published);
    metrics_add_u64(m, "damselfly_scraper_messages_published_total", DSF_COUNTER,
                    "Messages handed to the bus.", NULL, &st->messages_published);
    metrics_add_u64(m, "damselfly_scraper_messages_delivered_total", DSF_COUNTER,
                    "Messages the broker confirmed.", NULL, &st->messages_delivered);
    metrics_add_u64(m, "damselfly_scraper_publish_failures_total", DSF_COUNTER,
                    "Messages the bus did not take or confirm (not connected, client full, "
                    "refused): dropped, not retried.",
                    NULL, &st->publish_failed_messages);
    metrics_add_u64(m, "damselfly_scraper_lines_dropped_total", DSF_COUNTER,
                    "Lines of messages the bus did not take.", NULL, &st->publish_failed_lines);
    metrics_add_u64(m, "damselfly_scraper_statuses_published_total", DSF_COUNTER,
                    "Retained statuses published on the targets' behalf (online, offline, "
                    "cleared; again after every reconnect).",
                    NULL, &st->status_changes);
    metrics_add_u64(m, "damselfly_scraper_targets_refused_total", DSF_COUNTER,
                    "Targets of a source not taken (a bad identity or address, one VM listed "
                    "twice).",
                    NULL, &st->targets_refused);
    metrics_add_u64(m, "damselfly_scraper_source_failures_total", DSF_COUNTER,
                    "Reads of the targets file or the federation model that failed (the "
                    "targets stayed as they were).",
                    NULL, &st->sources_failed);
    static const char targets_help[] = "Targets by state: pending (not scraped yet), up (status "
                                       "online), down (status offline).";
    metrics_add_fn(m, "damselfly_scraper_targets", DSF_GAUGE, targets_help, "state=\"pending\"",
                   count_pending, s);
    metrics_add_fn(m, "damselfly_scraper_targets", DSF_GAUGE, targets_help, "state=\"up\"",
                   count_up, s);
    metrics_add_fn(m, "damselfly_scraper_targets", DSF_GAUGE, targets_help, "state=\"down\"",
                   count_down, s);
    metrics_add_histogram(m, "damselfly_scraper_scrape_duration_seconds",
                          "Time from a scrape's start to its end, any result.", NULL, &s->duration);
}
