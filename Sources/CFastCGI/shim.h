#include <fcgiapp.h>
/* epoll for the parking lot's monitor: Glibc's Swift module does not export it. */
#include <sys/epoll.h>
