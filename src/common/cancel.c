/*
 * Cancellation tokens; see cancel.h. The lock makes "fire" and "disarm"
 * exclusive, so a wake function is never called after its wait ended.
 */
#include "config.h"

#include "common/cancel.h"

static __thread struct cancel *cancel_tls;

void cancel_init(struct cancel *c)
{
	pthread_mutex_init(&c->lock, NULL);
	c->fired = false;
	c->wake = NULL;
	c->arg = NULL;
}

void cancel_destroy(struct cancel *c)
{
	pthread_mutex_destroy(&c->lock);
}

void cancel_fire(struct cancel *c)
{
	pthread_mutex_lock(&c->lock);
	__atomic_store_n(&c->fired, true, __ATOMIC_RELEASE);
	if (c->wake)
		c->wake(c->arg);
	pthread_mutex_unlock(&c->lock);
}

bool cancel_fired(struct cancel *c)
{
	return __atomic_load_n(&c->fired, __ATOMIC_ACQUIRE);
}

bool cancel_arm(struct cancel *c, void (*wake)(void *arg), void *arg)
{
	bool ok;

	pthread_mutex_lock(&c->lock);
	ok = !c->fired;
	if (ok) {
		c->wake = wake;
		c->arg = arg;
	}
	pthread_mutex_unlock(&c->lock);
	return ok;
}

void cancel_disarm(struct cancel *c)
{
	pthread_mutex_lock(&c->lock);
	c->wake = NULL;
	c->arg = NULL;
	pthread_mutex_unlock(&c->lock);
}

void cancel_set_current(struct cancel *c)
{
	cancel_tls = c;
}

struct cancel *cancel_current(void)
{
	return cancel_tls;
}
