/* The ledger's files are private to the service account (RELIABILITY D5, D8): the
 * directory is created 0700, the database, -wal and -shm 0600 whatever the umask, and a
 * symlinked or over-permissive existing file is refused rather than used. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/alloc.h"
#include "ledger/internal.h"

/* Others may not read or write the database; the group may not write it. */
#define BAD_FILE_BITS (S_IROTH | S_IWOTH | S_IWGRP)

static px_err check_file(const char *path, bool must_exist, px_error *err)
{
    struct stat st;
    if (lstat(path, &st) != 0) {
        if (errno == ENOENT && !must_exist)
            return PX_OK;
        return px_error_setd(err, PX_ERR_IO, errno, "ledger file %s: %s", path, strerror(errno));
    }
    if (S_ISLNK(st.st_mode))
        return px_error_set(err, PX_ERR_INVAL,
                            "ledger file %s is a symlink; refusing to follow it (point the "
                            "ledger path at the real file)",
                            path);
    if (!S_ISREG(st.st_mode))
        return px_error_set(err, PX_ERR_INVAL, "ledger file %s is not a regular file", path);
    if ((st.st_mode & BAD_FILE_BITS) != 0)
        return px_error_set(err, PX_ERR_INVAL,
                            "ledger file %s is readable or writable by others (mode %04o); "
                            "run chmod 600 on it",
                            path, (unsigned)(st.st_mode & 07777));
    return PX_OK;
}

static px_err check_sidecars(const char *path, px_error *err)
{
    static const char *const suffixes[] = {"-wal", "-shm", "-journal"};
    char side[4096];
    for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
        int n = snprintf(side, sizeof(side), "%s%s", path, suffixes[i]);
        if (n < 0 || (size_t)n >= sizeof(side))
            return px_error_set(err, PX_ERR_INVAL, "ledger path too long");
        px_err rc = check_file(side, false, err);
        if (rc != PX_OK)
            return rc;
    }
    return PX_OK;
}

/* Creates every missing directory of dir with mode 0700 (chmod after mkdir, so the umask
 * cannot widen or narrow it). When the directory holding the files (leaf) already exists
 * and others may write it, it is refused: they could swap the files. Ancestors such as
 * /tmp may be shared. */
static px_err make_dirs(char *dir, bool leaf, px_error *err)
{
    struct stat st;
    if (stat(dir, &st) == 0) {
        if (!S_ISDIR(st.st_mode))
            return px_error_set(err, PX_ERR_INVAL, "ledger directory %s is not a directory", dir);
        if (leaf && (st.st_mode & S_IWOTH) != 0)
            return px_error_set(err, PX_ERR_INVAL,
                                "ledger directory %s is writable by others (mode %04o); use a "
                                "private directory",
                                dir, (unsigned)(st.st_mode & 07777));
        return PX_OK;
    }
    if (errno != ENOENT)
        return px_error_setd(err, PX_ERR_IO, errno, "ledger directory %s: %s", dir,
                             strerror(errno));
    char *slash = strrchr(dir, '/');
    if (slash != NULL && slash != dir) {
        *slash = '\0';
        px_err rc = make_dirs(dir, false, err);
        *slash = '/';
        if (rc != PX_OK)
            return rc;
    }
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return px_error_setd(err, PX_ERR_IO, errno, "cannot create ledger directory %s: %s", dir,
                             strerror(errno));
    if (chmod(dir, 0700) != 0)
        return px_error_setd(err, PX_ERR_IO, errno, "cannot chmod ledger directory %s: %s", dir,
                             strerror(errno));
    return PX_OK;
}

px_err ledger__prepare_path(const char *path, px_error *err)
{
    size_t len = strlen(path);
    if (len == 0)
        return px_error_set(err, PX_ERR_INVAL, "ledger path is empty");
    if (len > 4000)
        return px_error_set(err, PX_ERR_INVAL, "ledger path too long");
    if (path[len - 1] == '/')
        return px_error_set(err, PX_ERR_INVAL, "ledger path %s names a directory", path);

    char *dir = px_malloc(len + 1);
    if (dir == NULL)
        return px_error_set(err, PX_ERR_NOMEM, "no memory for the ledger path");
    memcpy(dir, path, len + 1);
    px_err rc = PX_OK;
    char *slash = strrchr(dir, '/');
    if (slash != NULL) {
        if (slash == dir)
            slash[1] = '\0';
        else
            *slash = '\0';
        rc = make_dirs(dir, true, err);
    }
    px_free(dir);
    if (rc != PX_OK)
        return rc;

    rc = check_file(path, false, err);
    if (rc != PX_OK)
        return rc;
    rc = check_sidecars(path, err);
    if (rc != PX_OK)
        return rc;

    /* Create the database ourselves, 0600: SQLite would use 0644 minus the umask, and it
     * gives the -wal and -shm files it creates later the database file's mode. */
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        if (errno == EEXIST)
            return check_file(path, true, err);
        return px_error_setd(err, PX_ERR_IO, errno, "cannot create ledger file %s: %s", path,
                             strerror(errno));
    }
    if (fchmod(fd, 0600) != 0) {
        int e = errno;
        close(fd);
        return px_error_setd(err, PX_ERR_IO, e, "cannot chmod ledger file %s: %s", path,
                             strerror(e));
    }
    close(fd);
    return PX_OK;
}

px_err ledger__fix_modes(const char *path, px_error *err)
{
    static const char *const suffixes[] = {"", "-wal", "-shm"};
    char file[4096];
    for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
        int n = snprintf(file, sizeof(file), "%s%s", path, suffixes[i]);
        if (n < 0 || (size_t)n >= sizeof(file))
            return px_error_set(err, PX_ERR_INVAL, "ledger path too long");
        struct stat st;
        if (lstat(file, &st) != 0) {
            if (errno == ENOENT)
                continue;
            return px_error_setd(err, PX_ERR_IO, errno, "ledger file %s: %s", file,
                                 strerror(errno));
        }
        if (S_ISLNK(st.st_mode) || !S_ISREG(st.st_mode))
            return px_error_set(err, PX_ERR_INVAL, "ledger file %s is not a regular file", file);
        if ((st.st_mode & 0077) != 0 && chmod(file, 0600) != 0)
            return px_error_setd(err, PX_ERR_IO, errno, "cannot chmod ledger file %s: %s", file,
                                 strerror(errno));
    }
    return PX_OK;
}

px_err ledger__check_existing(const char *path, px_error *err)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return px_error_setd(err, PX_ERR_IO, errno, "no ledger at %s: %s", path, strerror(errno));
    if (S_ISLNK(st.st_mode))
        return px_error_set(err, PX_ERR_INVAL, "ledger file %s is a symlink; refusing to follow it",
                            path);
    if (!S_ISREG(st.st_mode))
        return px_error_set(err, PX_ERR_INVAL, "ledger file %s is not a regular file", path);
    return PX_OK;
}
