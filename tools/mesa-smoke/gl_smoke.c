// SPDX-License-Identifier: GPL-2.0
/*
 * gl_smoke: checks that iris, through EGL on the surfaceless platform, really runs work
 * on the Intel device, with results the GPU (here the software host's command streamer)
 * and the kernel produce and the CPU reads back:
 *
 *  1. an OpenGL core context on the surfaceless display reports an Intel renderer;
 *  2. the GPU timestamp from the CPU (glGetInteger64v(GL_TIMESTAMP), which iris reads
 *     with DRM_IOCTL_I915_REG_READ) moves forward;
 *  3. two GL_TIMESTAMP queries around a GL_TIME_ELAPSED query and a few clears of a
 *     framebuffer object (PIPE_CONTROL timestamp writes) are available after glFinish,
 *     non-zero and ordered, and the elapsed time is no larger than their difference;
 *  4. a fence sync is signalled by the GPU (glClientWaitSync), and only after the work
 *     before it ran: a timestamp query written before the fence is available then;
 *  5. an EGL native fence (EGL_ANDROID_native_fence_sync) gives a sync_file fd that
 *     becomes readable (poll) once the batch ran, again with the query before it done.
 *
 * EGL and GL are loaded at run time (dlopen and eglGetProcAddress), so the program builds
 * without the GL libraries and also as a 32-bit binary. Prints one "gl_smoke: ..." line
 * per check and exits 0 only if every check passed.
 */
#include <dlfcn.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <EGL/egl.h>
#include <EGL/eglext.h>

/* The GL types and enums used here, as the OpenGL 4.6 core specification numbers them. */
typedef unsigned int GLenum;
typedef unsigned int GLuint;
typedef unsigned int GLbitfield;
typedef int GLint;
typedef int GLsizei;
typedef float GLfloat;
typedef uint64_t GLuint64;
typedef int64_t GLint64;
typedef struct __GLsync *GLsync;
#define GL_NO_ERROR 0
#define GL_RENDERER 0x1F01
#define GL_VERSION 0x1F02
#define GL_TIME_ELAPSED 0x88BF
#define GL_TIMESTAMP 0x8E28
#define GL_QUERY_RESULT 0x8866
#define GL_QUERY_RESULT_AVAILABLE 0x8867
#define GL_SYNC_GPU_COMMANDS_COMPLETE 0x9117
#define GL_SYNC_FLUSH_COMMANDS_BIT 0x00000001
#define GL_ALREADY_SIGNALED 0x911A
#define GL_CONDITION_SATISFIED 0x911C
#define GL_FRAMEBUFFER 0x8D40
#define GL_RENDERBUFFER 0x8D41
#define GL_COLOR_ATTACHMENT0 0x8CE0
#define GL_FRAMEBUFFER_COMPLETE 0x8CD5
#define GL_RGBA8 0x8058
#define GL_COLOR_BUFFER_BIT 0x00004000

static int failures;

#define CHECK(cond, ...)                                                 \
	do {                                                             \
		int ok_ = !!(cond);                                      \
		printf("gl_smoke: %s: ", ok_ ? "ok" : "FAILED");         \
		printf(__VA_ARGS__);                                     \
		printf("\n");                                            \
		failures += !ok_;                                        \
	} while (0)

#define NEED(cond, what)                                                 \
	do {                                                             \
		if (!(cond)) {                                           \
			printf("gl_smoke: FAILED: %s\n", what);          \
			return 1;                                        \
		}                                                        \
	} while (0)

static struct {
	const unsigned char *(*GetString)(GLenum);
	GLenum (*GetError)(void);
	void (*GetInteger64v)(GLenum, GLint64 *);
	void (*GenQueries)(GLsizei, GLuint *);
	void (*DeleteQueries)(GLsizei, const GLuint *);
	void (*QueryCounter)(GLuint, GLenum);
	void (*BeginQuery)(GLenum, GLuint);
	void (*EndQuery)(GLenum);
	void (*GetQueryObjectiv)(GLuint, GLenum, GLint *);
	void (*GetQueryObjectui64v)(GLuint, GLenum, GLuint64 *);
	GLsync (*FenceSync)(GLenum, GLbitfield);
	GLenum (*ClientWaitSync)(GLsync, GLbitfield, GLuint64);
	void (*DeleteSync)(GLsync);
	void (*Flush)(void);
	void (*Finish)(void);
	void (*GenFramebuffers)(GLsizei, GLuint *);
	void (*BindFramebuffer)(GLenum, GLuint);
	GLenum (*CheckFramebufferStatus)(GLenum);
	void (*GenRenderbuffers)(GLsizei, GLuint *);
	void (*BindRenderbuffer)(GLenum, GLuint);
	void (*RenderbufferStorage)(GLenum, GLenum, GLsizei, GLsizei);
	void (*FramebufferRenderbuffer)(GLenum, GLenum, GLenum, GLuint);
	void (*Viewport)(GLint, GLint, GLsizei, GLsizei);
	void (*ClearColor)(GLfloat, GLfloat, GLfloat, GLfloat);
	void (*Clear)(GLbitfield);
} gl;

static PFNEGLGETPROCADDRESSPROC get_proc;

/* Each entry point converted from eglGetProcAddress's function pointer type to its own. */
#define LOAD(field, name)                                                \
	do {                                                             \
		gl.field = (__typeof__(gl.field))get_proc(name);         \
		if (!gl.field) {                                         \
			printf("gl_smoke: FAILED: no entry point %s\n", name); \
			ok = 0;                                          \
		}                                                        \
	} while (0)

/* Whether `name` is a whole word of the space-separated list `list`. */
static int has_ext(const char *list, const char *name)
{
	size_t n = strlen(name);

	for (const char *p = list; p && (p = strstr(p, name)); p += n)
		if ((p == list || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\0'))
			return 1;
	return 0;
}

/* A GL_TIMESTAMP query written by the GPU now, to look at after a fence. */
static GLuint timestamp_query(void)
{
	GLuint q = 0;

	gl.GenQueries(1, &q);
	gl.QueryCounter(q, GL_TIMESTAMP);
	return q;
}

/* Whether query `q` has its result, without waiting or flushing. */
static int query_done(GLuint q)
{
	GLint avail = 0;

	gl.GetQueryObjectiv(q, GL_QUERY_RESULT_AVAILABLE, &avail);
	gl.DeleteQueries(1, &q);
	return avail != 0;
}

int main(void)
{
	void *lib = dlopen("libEGL.so.1", RTLD_NOW | RTLD_LOCAL);
	NEED(lib, "dlopen(libEGL.so.1)");
	get_proc = (PFNEGLGETPROCADDRESSPROC)dlsym(lib, "eglGetProcAddress");
	NEED(get_proc, "dlsym(eglGetProcAddress)");

	PFNEGLGETPLATFORMDISPLAYEXTPROC get_display =
		(PFNEGLGETPLATFORMDISPLAYEXTPROC)get_proc("eglGetPlatformDisplayEXT");
	PFNEGLINITIALIZEPROC initialize = (PFNEGLINITIALIZEPROC)get_proc("eglInitialize");
	PFNEGLQUERYSTRINGPROC query_string = (PFNEGLQUERYSTRINGPROC)get_proc("eglQueryString");
	PFNEGLBINDAPIPROC bind_api = (PFNEGLBINDAPIPROC)get_proc("eglBindAPI");
	PFNEGLCREATECONTEXTPROC create_context =
		(PFNEGLCREATECONTEXTPROC)get_proc("eglCreateContext");
	PFNEGLMAKECURRENTPROC make_current = (PFNEGLMAKECURRENTPROC)get_proc("eglMakeCurrent");
	PFNEGLTERMINATEPROC terminate = (PFNEGLTERMINATEPROC)get_proc("eglTerminate");
	PFNEGLGETERRORPROC egl_error = (PFNEGLGETERRORPROC)get_proc("eglGetError");
	NEED(get_display && initialize && query_string && bind_api && create_context &&
		     make_current && terminate && egl_error,
	     "EGL entry points");

	EGLDisplay dpy = get_display(EGL_PLATFORM_SURFACELESS_MESA, EGL_DEFAULT_DISPLAY, NULL);
	EGLint major = 0, minor = 0;
	NEED(dpy != EGL_NO_DISPLAY && initialize(dpy, &major, &minor),
	     "surfaceless EGL display");
	const char *exts = query_string(dpy, EGL_EXTENSIONS);
	NEED(has_ext(exts, "EGL_KHR_no_config_context") &&
		     has_ext(exts, "EGL_KHR_surfaceless_context"),
	     "EGL_KHR_no_config_context and EGL_KHR_surfaceless_context");
	NEED(bind_api(EGL_OPENGL_API), "eglBindAPI(EGL_OPENGL_API)");
	const EGLint attrs[] = {
		EGL_CONTEXT_MAJOR_VERSION, 3,
		EGL_CONTEXT_MINOR_VERSION, 3,
		EGL_CONTEXT_OPENGL_PROFILE_MASK, EGL_CONTEXT_OPENGL_CORE_PROFILE_BIT,
		EGL_NONE,
	};
	EGLContext ctx = create_context(dpy, EGL_NO_CONFIG_KHR, EGL_NO_CONTEXT, attrs);
	if (ctx == EGL_NO_CONTEXT)
		printf("gl_smoke: eglCreateContext: EGL error %#x\n", (unsigned)egl_error());
	NEED(ctx != EGL_NO_CONTEXT, "an OpenGL 3.3 core context");
	NEED(make_current(dpy, EGL_NO_SURFACE, EGL_NO_SURFACE, ctx), "eglMakeCurrent");

	int ok = 1;

	LOAD(GetString, "glGetString");
	LOAD(GetError, "glGetError");
	LOAD(GetInteger64v, "glGetInteger64v");
	LOAD(GenQueries, "glGenQueries");
	LOAD(DeleteQueries, "glDeleteQueries");
	LOAD(QueryCounter, "glQueryCounter");
	LOAD(BeginQuery, "glBeginQuery");
	LOAD(EndQuery, "glEndQuery");
	LOAD(GetQueryObjectiv, "glGetQueryObjectiv");
	LOAD(GetQueryObjectui64v, "glGetQueryObjectui64v");
	LOAD(FenceSync, "glFenceSync");
	LOAD(ClientWaitSync, "glClientWaitSync");
	LOAD(DeleteSync, "glDeleteSync");
	LOAD(Flush, "glFlush");
	LOAD(Finish, "glFinish");
	LOAD(GenFramebuffers, "glGenFramebuffers");
	LOAD(BindFramebuffer, "glBindFramebuffer");
	LOAD(CheckFramebufferStatus, "glCheckFramebufferStatus");
	LOAD(GenRenderbuffers, "glGenRenderbuffers");
	LOAD(BindRenderbuffer, "glBindRenderbuffer");
	LOAD(RenderbufferStorage, "glRenderbufferStorage");
	LOAD(FramebufferRenderbuffer, "glFramebufferRenderbuffer");
	LOAD(Viewport, "glViewport");
	LOAD(ClearColor, "glClearColor");
	LOAD(Clear, "glClear");
	NEED(ok, "GL entry points");

	/* 1. The renderer. */
	const char *renderer = (const char *)gl.GetString(GL_RENDERER);
	const char *version = (const char *)gl.GetString(GL_VERSION);
	CHECK(renderer && strstr(renderer, "Intel"), "renderer \"%s\", version \"%s\"",
	      renderer ? renderer : "(none)", version ? version : "(none)");

	/* 2. The GPU clock as the CPU reads it (the kernel's REG_READ). */
	GLint64 cpu0 = 0, cpu1 = 0;
	gl.GetInteger64v(GL_TIMESTAMP, &cpu0);
	usleep(2000);
	gl.GetInteger64v(GL_TIMESTAMP, &cpu1);
	CHECK(cpu0 > 0 && cpu1 > cpu0, "GL_TIMESTAMP read by the CPU moves: %" PRId64
	      " then %" PRId64 " ns", (int64_t)cpu0, (int64_t)cpu1);

	/* 3. Timestamps and elapsed time written by the GPU around real work. */
	GLuint fb, rb, q[3];
	gl.GenRenderbuffers(1, &rb);
	gl.BindRenderbuffer(GL_RENDERBUFFER, rb);
	gl.RenderbufferStorage(GL_RENDERBUFFER, GL_RGBA8, 64, 64);
	gl.GenFramebuffers(1, &fb);
	gl.BindFramebuffer(GL_FRAMEBUFFER, fb);
	gl.FramebufferRenderbuffer(GL_FRAMEBUFFER, GL_COLOR_ATTACHMENT0, GL_RENDERBUFFER, rb);
	CHECK(gl.CheckFramebufferStatus(GL_FRAMEBUFFER) == GL_FRAMEBUFFER_COMPLETE,
	      "a 64x64 RGBA8 framebuffer object is complete");
	gl.Viewport(0, 0, 64, 64);
	gl.GenQueries(3, q);
	gl.QueryCounter(q[0], GL_TIMESTAMP);
	gl.BeginQuery(GL_TIME_ELAPSED, q[1]);
	for (int i = 0; i < 4; i++) {
		gl.ClearColor(i * 0.25f, 0.5f, 1.0f - i * 0.25f, 1.0f);
		gl.Clear(GL_COLOR_BUFFER_BIT);
	}
	gl.EndQuery(GL_TIME_ELAPSED);
	gl.QueryCounter(q[2], GL_TIMESTAMP);
	gl.Finish();
	GLint avail[3] = { 0, 0, 0 };
	GLuint64 val[3] = { 0, 0, 0 };
	for (int i = 0; i < 3; i++) {
		gl.GetQueryObjectiv(q[i], GL_QUERY_RESULT_AVAILABLE, &avail[i]);
		gl.GetQueryObjectui64v(q[i], GL_QUERY_RESULT, &val[i]);
	}
	CHECK(avail[0] && avail[1] && avail[2], "the queries are available after glFinish");
	CHECK(val[0] > 0 && val[2] > val[0],
	      "GPU timestamps around the clears: %" PRIu64 " then %" PRIu64 " ns",
	      (uint64_t)val[0], (uint64_t)val[2]);
	/* One nanosecond of slack: each is rounded from GPU ticks on its own. */
	CHECK(val[2] > val[0] && val[1] <= val[2] - val[0] + 1,
	      "elapsed time of the clears %" PRIu64 " ns, within the timestamps' %" PRIu64 " ns",
	      (uint64_t)val[1], (uint64_t)(val[2] - val[0]));
	gl.DeleteQueries(3, q);
	CHECK(gl.GetError() == GL_NO_ERROR, "no GL error so far");

	/* 4. A fence sync the GPU signals after the work before it. */
	gl.Clear(GL_COLOR_BUFFER_BIT);
	GLuint before = timestamp_query();
	GLsync sync = gl.FenceSync(GL_SYNC_GPU_COMMANDS_COMPLETE, 0);
	GLenum w = sync ? gl.ClientWaitSync(sync, GL_SYNC_FLUSH_COMMANDS_BIT, 10000000000ull) : 0;
	int done = query_done(before);
	CHECK((w == GL_ALREADY_SIGNALED || w == GL_CONDITION_SATISFIED) && done,
	      "glClientWaitSync on a fence after a clear: %#x, the query before it done: %d", w,
	      done);
	if (sync)
		gl.DeleteSync(sync);

	/* 5. The batch's fence as a sync_file fd. */
	if (!has_ext(exts, "EGL_ANDROID_native_fence_sync")) {
		CHECK(0, "EGL_ANDROID_native_fence_sync is offered (the kernel has out-fences)");
	} else {
		PFNEGLCREATESYNCKHRPROC create_sync =
			(PFNEGLCREATESYNCKHRPROC)get_proc("eglCreateSyncKHR");
		PFNEGLDESTROYSYNCKHRPROC destroy_sync =
			(PFNEGLDESTROYSYNCKHRPROC)get_proc("eglDestroySyncKHR");
		PFNEGLDUPNATIVEFENCEFDANDROIDPROC dup_fd =
			(PFNEGLDUPNATIVEFENCEFDANDROIDPROC)get_proc("eglDupNativeFenceFDANDROID");
		NEED(create_sync && destroy_sync && dup_fd, "EGL native fence entry points");
		gl.Clear(GL_COLOR_BUFFER_BIT);
		GLuint before = timestamp_query();
		EGLSyncKHR s = create_sync(dpy, EGL_SYNC_NATIVE_FENCE_ANDROID, NULL);
		gl.Flush();
		int fd = s != EGL_NO_SYNC_KHR ? dup_fd(dpy, s) : -1;
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int r = fd >= 0 ? poll(&p, 1, 10000) : -1;
		int done = query_done(before);
		CHECK(fd >= 0 && r == 1 && (p.revents & POLLIN) && done,
		      "a native fence fd after a clear becomes readable (fd %d, poll %d, revents %#x), "
		      "the query before it done: %d", fd, r, (unsigned)p.revents, done);
		if (fd >= 0)
			close(fd);
		if (s != EGL_NO_SYNC_KHR)
			destroy_sync(dpy, s);
	}

	make_current(dpy, EGL_NO_SURFACE, EGL_NO_SURFACE, EGL_NO_CONTEXT);
	terminate(dpy);
	printf("gl_smoke: %s\n", failures ? "FAILED" : "passed");
	return failures ? 1 : 0;
}
