#define DSF_MODULE "notify"
#include "alarm/notify/internal.h"
#include "common/log.h"

#include <pthread.h>

/* One writer for the notification log and the silences of every notifier in the process. */
static struct dsf_file_writer *writer;
static pthread_mutex_t writer_lock = PTHREAD_MUTEX_INITIALIZER;

static void written(void *arg, const char *err)
{
    if (err)
        log_error("%s: a restart may notify again (check the state directory)", err);
}

int nf_write_atomic(const char *dir, const char *name, const void *data, size_t len)
{
    pthread_mutex_lock(&writer_lock);
    if (!writer)
        writer = dsf_file_writer_new();
    int rc = writer ? dsf_file_writer_put(writer, dir, name, data, len, written, NULL) : -1;
    pthread_mutex_unlock(&writer_lock);
    return rc;
}

void nf_files_close(void)
{
    pthread_mutex_lock(&writer_lock);
    dsf_file_writer_free(writer);
    writer = NULL;
    pthread_mutex_unlock(&writer_lock);
}
