/* game_bench_measure: runs one command and reports what it cost, as one line of JSON.
 *
 *   game_bench_measure [--in FILE] [--out FILE] [--err FILE] [--timeout SECONDS] -- CMD [ARG...]
 *
 * stdin from --in (default /dev/null), stdout/stderr to --out/--err (default /dev/null).
 * Prints {"status": N, "wall_s": ..., "user_s": ..., "sys_s": ..., "maxrss_kb": ..., "minflt": ...,
 * "timed_out": 0|1}
 * from wait4() of that one child: user+sys CPU and peak RSS of the command alone. A small C
 * program, so the peak RSS the kernel carries over exec (the parent's, copied by fork) is this
 * program's few hundred KB, not a Python interpreter's. After --timeout (default 120) the child
 * gets SIGKILL.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile pid_t child = 0;
static volatile sig_atomic_t timed_out = 0;

static void on_alarm(int sig) {
  (void)sig;
  timed_out = 1;
  if (child > 0) kill(child, SIGKILL);
}

static void usage(void) {
  fprintf(stderr,
          "usage: game_bench_measure [--in FILE] [--out FILE] [--err FILE] [--timeout S] -- CMD [ARG...]\n");
  exit(2);
}

static int open_or_die(const char* path, int flags) {
  int fd = open(path, flags | O_CLOEXEC, 0644);
  if (fd < 0) {
    fprintf(stderr, "game_bench_measure: %s: %s\n", path, strerror(errno));
    exit(2);
  }
  return fd;
}

int main(int argc, char** argv) {
  const char *in = "/dev/null", *out = "/dev/null", *err = "/dev/null";
  double timeout = 120;
  int i = 1;
  for (; i < argc; i += 2) {
    if (strcmp(argv[i], "--") == 0) {
      ++i;
      break;
    }
    if (i + 1 >= argc) usage();
    if (strcmp(argv[i], "--in") == 0)
      in = argv[i + 1];
    else if (strcmp(argv[i], "--out") == 0)
      out = argv[i + 1];
    else if (strcmp(argv[i], "--err") == 0)
      err = argv[i + 1];
    else if (strcmp(argv[i], "--timeout") == 0)
      timeout = atof(argv[i + 1]);
    else
      usage();
  }
  if (i >= argc || timeout <= 0) usage();
  int fd_in = open_or_die(in, O_RDONLY);
  int fd_out = open_or_die(out, O_WRONLY | O_CREAT | O_TRUNC);
  int fd_err = open_or_die(err, O_WRONLY | O_CREAT | O_TRUNC);

  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_alarm;
  sigaction(SIGALRM, &sa, NULL);

  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  pid_t pid = fork();
  if (pid < 0) {
    perror("fork");
    return 2;
  }
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    dup2(fd_in, 0);
    dup2(fd_out, 1);
    dup2(fd_err, 2);
    execvp(argv[i], argv + i);
    fprintf(stderr, "game_bench_measure: cannot run %s: %s\n", argv[i], strerror(errno));
    _exit(127);
  }
  child = pid;
  struct itimerval it;
  memset(&it, 0, sizeof it);
  it.it_value.tv_sec = (time_t)timeout;
  it.it_value.tv_usec = (suseconds_t)((timeout - (double)(time_t)timeout) * 1e6);
  setitimer(ITIMER_REAL, &it, NULL);

  int status = 0;
  struct rusage ru;
  for (;;) {
    pid_t r = wait4(pid, &status, 0, &ru);
    if (r == pid) break;
    if (r < 0 && errno == EINTR) continue;
    perror("wait4");
    return 2;
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  memset(&it, 0, sizeof it);
  setitimer(ITIMER_REAL, &it, NULL);
  int code = WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
  printf(
      "{\"status\": %d, \"wall_s\": %.6f, \"user_s\": %.6f, \"sys_s\": %.6f, \"maxrss_kb\": %ld, "
      "\"minflt\": %ld, \"timed_out\": %d}\n",
      code, (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9,
      (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6,
      (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6, ru.ru_maxrss, ru.ru_minflt,
      (int)timed_out);
  return 0;
}
