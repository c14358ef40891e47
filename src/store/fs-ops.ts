import * as fs from 'node:fs';

/**
 * Every file-system call the store makes goes through this one object, so that a test can
 * swap a single call for a failing one (EIO on write or on fdatasync, a short write, a
 * full disk at a chosen moment) and watch the store's failure paths run for real, without
 * a mock file system. Production code never changes it.
 */
export const fsOps = {
  openSync: fs.openSync,
  closeSync: fs.closeSync,
  close: fs.close,
  writeSync: fs.writeSync,
  readSync: fs.readSync,
  fdatasync: fs.fdatasync,
  fdatasyncSync: fs.fdatasyncSync,
  fsyncSync: fs.fsyncSync,
  ftruncateSync: fs.ftruncateSync,
  fstatSync: fs.fstatSync,
  statSync: fs.statSync,
  readFileSync: fs.readFileSync,
  writeFileSync: fs.writeFileSync,
  readdirSync: fs.readdirSync,
  rmSync: fs.rmSync,
  unlinkSync: fs.unlinkSync,
  unlink: fs.unlink,
  mkdirSync: fs.mkdirSync,
  existsSync: fs.existsSync,
  renameSync: fs.renameSync,
  readlinkSync: fs.readlinkSync,
  symlinkSync: fs.symlinkSync,
};
