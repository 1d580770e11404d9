/*
 * Cutting a blocking origin request short from another thread. The thread
 * that blocks arms the token with how to wake it (for libcurl, a multi
 * handle's wakeup); any other thread may fire it. Firing before the arm,
 * during the wait or after it is never lost: the waiter checks the token
 * after every wake-up and before it sleeps.
 *
 * A thread names the token of the request it serves with cancel_set_current
 * so that code far below (the HTTP client) can honour it without every
 * interface in between carrying it.
 */
#ifndef COMMON_CANCEL_H
#define COMMON_CANCEL_H

#include <pthread.h>
#include <stdbool.h>

struct cancel {
	pthread_mutex_t lock;
	bool fired; /* under lock; also read without it as a hint */
	void (*wake)(void *arg); /* under lock, while a wait is armed */
	void *arg;
};

void cancel_init(struct cancel *c);
void cancel_destroy(struct cancel *c);
/* Fire c: the armed wait, if any, is woken under c's lock. */
void cancel_fire(struct cancel *c);
bool cancel_fired(struct cancel *c);
/*
 * Arm c with wake(arg) for a wait about to start. False when c already
 * fired (do not wait then). wake must be safe to call from any thread
 * until cancel_disarm returns.
 */
bool cancel_arm(struct cancel *c, void (*wake)(void *arg), void *arg);
void cancel_disarm(struct cancel *c);

/* The calling thread's current token (NULL: its requests run to their
 * own timeouts). */
void cancel_set_current(struct cancel *c);
struct cancel *cancel_current(void);

#endif
