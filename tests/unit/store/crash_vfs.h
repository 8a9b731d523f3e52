// SPDX-License-Identifier: Apache-2.0
#pragma once
// CrashVfs: a test-only SQLite VFS over the default one that models a machine losing power.
// Writes and truncations stay in memory (visible to every reader, as the OS page cache makes
// them) until the file is synced; crash() throws away everything not yet synced and makes every
// open file fail from then on, as if the process died with the machine. Optionally the crash
// fires by itself at the Nth write, to sweep crash points through a workload.

#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace confab::testing {

class CrashVfs {
 public:
  explicit CrashVfs(std::string name) : name_(std::move(name)) {
    base_ = sqlite3_vfs_find(nullptr);
    vfs_ = *base_;
    vfs_.iVersion = 2;
    vfs_.zName = name_.c_str();
    vfs_.pAppData = this;
    vfs_.szOsFile = int(sizeof(File) + 16 + std::size_t(base_->szOsFile));
    vfs_.xOpen = &CrashVfs::open;
    vfs_.xDelete = &CrashVfs::remove;
    vfs_.xAccess = [](sqlite3_vfs* v, const char* n, int f, int* out) {
      return self(v)->base_->xAccess(self(v)->base_, n, f, out);
    };
    vfs_.xFullPathname = [](sqlite3_vfs* v, const char* n, int len, char* out) {
      return self(v)->base_->xFullPathname(self(v)->base_, n, len, out);
    };
    sqlite3_vfs_register(&vfs_, 0);
  }
  ~CrashVfs() { sqlite3_vfs_unregister(&vfs_); }
  CrashVfs(const CrashVfs&) = delete;
  CrashVfs& operator=(const CrashVfs&) = delete;

  const std::string& name() const { return name_; }

  // Loses every unsynced write; open files fail from now on.
  void crash() {
    std::lock_guard lock(mu_);
    crashed_ = true;
    pending_.clear();
    ++generation_;
  }
  // Crash automatically when the Nth write from now arrives (that write is lost too).
  void crashAtWrite(long n) { writesLeft_ = n; }
  // After a crash: files opened from now on work again (on what was synced).
  void restart() {
    std::lock_guard lock(mu_);
    crashed_ = false;
    writesLeft_ = -1;
  }
  bool crashed() const { return crashed_; }

 private:
  struct Op {
    bool truncate;
    sqlite3_int64 offset;  // write offset, or the new size
    std::string data;
  };
  struct File {
    sqlite3_file base;
    CrashVfs* vfs;
    sqlite3_file* real;
    std::string path;
    int generation;
  };
  static const sqlite3_io_methods kMethods;

  static CrashVfs* self(sqlite3_vfs* v) { return static_cast<CrashVfs*>(v->pAppData); }
  static File* file(sqlite3_file* f) { return reinterpret_cast<File*>(f); }
  bool dead(File* f) { return crashed_ || f->generation != generation_; }

  static int open(sqlite3_vfs* v, const char* name, sqlite3_file* out, int flags, int* outFlags) {
    CrashVfs* me = self(v);
    File* f = new (out) File{};
    f->vfs = me;
    f->real = reinterpret_cast<sqlite3_file*>(reinterpret_cast<char*>(out) + sizeof(File) + 16 -
                                              (sizeof(File) % 16));
    f->path = name ? name : "";
    {
      std::lock_guard lock(me->mu_);
      if (me->crashed_) {
        f->~File();
        out->pMethods = nullptr;
        return SQLITE_CANTOPEN;
      }
      f->generation = me->generation_;
    }
    int rc = me->base_->xOpen(me->base_, name, f->real, flags, outFlags);
    if (rc != SQLITE_OK) {
      f->~File();
      out->pMethods = nullptr;
      return rc;
    }
    out->pMethods = &kMethods;
    return SQLITE_OK;
  }

  static int remove(sqlite3_vfs* v, const char* name, int syncDir) {
    CrashVfs* me = self(v);
    std::lock_guard lock(me->mu_);
    if (me->crashed_) {
      return SQLITE_IOERR_DELETE;
    }
    me->pending_.erase(name);
    return me->base_->xDelete(me->base_, name, syncDir);
  }

  static int close(sqlite3_file* sf) {
    File* f = file(sf);
    int rc = f->real->pMethods->xClose(f->real);
    f->~File();
    return rc;
  }

  // Logical size: the synced file with the pending operations applied.
  sqlite3_int64 sizeOf(File* f) {
    sqlite3_int64 size = 0;
    f->real->pMethods->xFileSize(f->real, &size);
    for (const Op& op : pending_[f->path]) {
      size = op.truncate ? op.offset
                         : std::max<sqlite3_int64>(size, op.offset + sqlite3_int64(op.data.size()));
    }
    return size;
  }

  static int read(sqlite3_file* sf, void* out, int amount, sqlite3_int64 offset) {
    File* f = file(sf);
    CrashVfs* me = f->vfs;
    std::lock_guard lock(me->mu_);
    if (me->dead(f)) {
      return SQLITE_IOERR_READ;
    }
    auto* dst = static_cast<char*>(out);
    int rc = f->real->pMethods->xRead(f->real, out, amount, offset);
    if (rc != SQLITE_OK && rc != SQLITE_IOERR_SHORT_READ) {
      return rc;
    }
    sqlite3_int64 end = offset + amount;
    for (const Op& op : me->pending_[f->path]) {
      if (op.truncate) {
        if (op.offset < end) {
          auto from = std::max(op.offset, offset);
          std::memset(dst + (from - offset), 0, std::size_t(end - from));
        }
        continue;
      }
      sqlite3_int64 lo = std::max(offset, op.offset);
      sqlite3_int64 hi = std::min(end, op.offset + sqlite3_int64(op.data.size()));
      if (lo < hi) {
        std::memcpy(dst + (lo - offset), op.data.data() + (lo - op.offset), std::size_t(hi - lo));
      }
    }
    return me->sizeOf(f) < end ? SQLITE_IOERR_SHORT_READ : SQLITE_OK;
  }

  static int write(sqlite3_file* sf, const void* in, int amount, sqlite3_int64 offset) {
    File* f = file(sf);
    CrashVfs* me = f->vfs;
    if (me->writesLeft_ > 0 && --me->writesLeft_ == 0) {
      me->crash();
    }
    std::lock_guard lock(me->mu_);
    if (me->dead(f)) {
      return SQLITE_IOERR_WRITE;
    }
    me->pending_[f->path].push_back(
        Op{false, offset, std::string(static_cast<const char*>(in), std::size_t(amount))});
    return SQLITE_OK;
  }

  static int truncate(sqlite3_file* sf, sqlite3_int64 size) {
    File* f = file(sf);
    CrashVfs* me = f->vfs;
    std::lock_guard lock(me->mu_);
    if (me->dead(f)) {
      return SQLITE_IOERR_TRUNCATE;
    }
    me->pending_[f->path].push_back(Op{true, size, {}});
    return SQLITE_OK;
  }

  // Makes the file's pending operations durable. The real fsync is skipped: durability is what
  // this VFS models, and the test should not wait for the disk.
  static int sync(sqlite3_file* sf, int) {
    File* f = file(sf);
    CrashVfs* me = f->vfs;
    std::lock_guard lock(me->mu_);
    if (me->dead(f)) {
      return SQLITE_IOERR_FSYNC;
    }
    auto it = me->pending_.find(f->path);
    if (it == me->pending_.end()) {
      return SQLITE_OK;
    }
    for (const Op& op : it->second) {
      int rc = op.truncate ? f->real->pMethods->xTruncate(f->real, op.offset)
                           : f->real->pMethods->xWrite(f->real, op.data.data(), int(op.data.size()),
                                                       op.offset);
      if (rc != SQLITE_OK) {
        return rc;
      }
    }
    me->pending_.erase(it);
    return SQLITE_OK;
  }

  static int fileSize(sqlite3_file* sf, sqlite3_int64* size) {
    File* f = file(sf);
    std::lock_guard lock(f->vfs->mu_);
    if (f->vfs->dead(f)) {
      return SQLITE_IOERR_FSTAT;
    }
    *size = f->vfs->sizeOf(f);
    return SQLITE_OK;
  }

  static int lock(sqlite3_file* f, int l) {
    return file(f)->real->pMethods->xLock(file(f)->real, l);
  }
  static int unlock(sqlite3_file* f, int l) {
    return file(f)->real->pMethods->xUnlock(file(f)->real, l);
  }
  static int checkReserved(sqlite3_file* f, int* out) {
    return file(f)->real->pMethods->xCheckReservedLock(file(f)->real, out);
  }
  static int control(sqlite3_file* f, int op, void* arg) {
    if (op == SQLITE_FCNTL_SIZE_HINT || op == SQLITE_FCNTL_CHUNK_SIZE) {
      return SQLITE_OK;  // would write to the real file behind the model's back
    }
    return file(f)->real->pMethods->xFileControl(file(f)->real, op, arg);
  }
  static int sector(sqlite3_file* f) { return file(f)->real->pMethods->xSectorSize(file(f)->real); }
  static int device(sqlite3_file* f) {
    return file(f)->real->pMethods->xDeviceCharacteristics(file(f)->real);
  }
  static int shmMap(sqlite3_file* f, int p, int s, int e, void volatile** out) {
    return file(f)->real->pMethods->xShmMap(file(f)->real, p, s, e, out);
  }
  static int shmLock(sqlite3_file* f, int o, int n, int fl) {
    return file(f)->real->pMethods->xShmLock(file(f)->real, o, n, fl);
  }
  static void shmBarrier(sqlite3_file* f) { file(f)->real->pMethods->xShmBarrier(file(f)->real); }
  static int shmUnmap(sqlite3_file* f, int d) {
    return file(f)->real->pMethods->xShmUnmap(file(f)->real, d);
  }

  std::string name_;
  sqlite3_vfs* base_ = nullptr;
  sqlite3_vfs vfs_{};
  std::mutex mu_;
  std::map<std::string, std::vector<Op>> pending_;
  std::atomic<bool> crashed_{false};
  std::atomic<long> writesLeft_{-1};
  int generation_ = 0;
};

inline const sqlite3_io_methods CrashVfs::kMethods = {2,
                                                      &CrashVfs::close,
                                                      &CrashVfs::read,
                                                      &CrashVfs::write,
                                                      &CrashVfs::truncate,
                                                      &CrashVfs::sync,
                                                      &CrashVfs::fileSize,
                                                      &CrashVfs::lock,
                                                      &CrashVfs::unlock,
                                                      &CrashVfs::checkReserved,
                                                      &CrashVfs::control,
                                                      &CrashVfs::sector,
                                                      &CrashVfs::device,
                                                      &CrashVfs::shmMap,
                                                      &CrashVfs::shmLock,
                                                      &CrashVfs::shmBarrier,
                                                      &CrashVfs::shmUnmap,
                                                      nullptr,
                                                      nullptr};

}  // namespace confab::testing
