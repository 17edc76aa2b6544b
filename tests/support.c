#include "support.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

const char *test_corpus_dir(void)
{
    const char *d = getenv("PX_CORPUS");
    return d != NULL ? d : "../shared/corpus";
}

const char *test_data_dir(void)
{
    const char *d = getenv("PX_TEST_DATA");
    return d != NULL ? d : "tests/data";
}

char *test_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    char *data = NULL;
    size_t cap = 0, n = 0;
    for (;;) {
        if (n + 4096 + 1 > cap) {
            cap = cap == 0 ? 8192 : cap * 2;
            char *p = realloc(data, cap);
            if (p == NULL) {
                free(data);
                fclose(f);
                return NULL;
            }
            data = p;
        }
        size_t got = fread(data + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0)
            break;
    }
    fclose(f);
    data[n] = '\0';
    if (len != NULL)
        *len = n;
    return data;
}

static int path_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

size_t test_walk_files(const char *dir, void (*fn)(const char *path, void *ctx), void *ctx)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return 0;
    char **names = NULL;
    size_t count = 0, cap = 0, visited = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        if (count == cap) {
            cap = cap == 0 ? 32 : cap * 2;
            char **p = realloc(names, cap * sizeof(*names));
            if (p == NULL)
                break;
            names = p;
        }
        size_t need = strlen(dir) + strlen(e->d_name) + 2;
        names[count] = malloc(need);
        if (names[count] == NULL)
            break;
        snprintf(names[count], need, "%s/%s", dir, e->d_name);
        count++;
    }
    closedir(d);
    qsort(names, count, sizeof(*names), path_cmp);
    for (size_t i = 0; i < count; i++) {
        struct stat st;
        if (stat(names[i], &st) == 0) {
            if (S_ISDIR(st.st_mode))
                visited += test_walk_files(names[i], fn, ctx);
            else if (S_ISREG(st.st_mode)) {
                fn(names[i], ctx);
                visited++;
            }
        }
        free(names[i]);
    }
    free(names);
    return visited;
}
