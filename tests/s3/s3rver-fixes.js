'use strict';
/*
 * tests/s3/s3rver-fixes.js - preloaded into s3rver 3.7 (`node -r`) by
 * tests/s3/s3env.sh. Fixes races and an ordering bug of s3rver's filesystem
 * store that make a correct client fail against it; nothing else changes:
 *
 *  - DeleteObjects deletes its keys concurrently and each delete removes the
 *    directories it emptied: two deletes in one directory race (readdir/rmdir
 *    ENOENT -> 500 InternalError). Same for a delete racing a put.
 *  - PutObject wrote the object file in place and answered before the file
 *    was complete: a concurrent GET/HEAD/list could see a partial object, two
 *    concurrent PUTs of one key wrote into the same file; a client that went
 *    away mid-body left a truncated object. Here the body goes to a temporary
 *    file that is renamed into place once complete (metadata files likewise).
 *  - Listings walk directories in file-name order, which is not key order
 *    when a key continues with a byte below '/' after a directory name
 *    ("a/b" vs "a-c"): pagination could skip or repeat keys. The walk here
 *    sorts entries by their key bytes (a directory as "name/").
 *
 * The s3rver package is found from the script node runs (process.argv[1],
 * .../node_modules/s3rver/bin/s3rver.js).
 */
const path = require('path');
const crypto = require('crypto');
const { Transform } = require('stream');

const libDir = path.join(path.dirname(process.argv[1]), '..', 'lib');
const fs = require(require.resolve('fs-extra', { paths: [libDir] }));
const utils = require(path.join(libDir, 'utils.js'));

const SUFFIX_RE = /\._S3rver_[a-z0-9.]+$/;

function vanished(err) {
  return err && (err.code === 'ENOENT' || err.code === 'ENOTDIR');
}

// must be replaced before the store module is loaded: it destructures `walk`
utils.walk = function* walk(dir, recurseFilter) {
  let names;
  try {
    names = fs.readdirSync(dir);
  } catch (err) {
    if (vanished(err)) return;
    throw err;
  }
  const entries = [];
  for (const name of names) {
    const filePath = path.posix.join(dir, name);
    let stats;
    try {
      stats = fs.statSync(filePath);
    } catch (err) {
      if (vanished(err)) continue;
      throw err;
    }
    const isDir = stats.isDirectory();
    const sortKey = Buffer.from(isDir ? name + '/' : name.replace(SUFFIX_RE, ''));
    entries.push({ filePath, isDir, sortKey });
  }
  entries.sort((a, b) => Buffer.compare(a.sortKey, b.sortKey));
  for (const e of entries) {
    if (!e.isDir) {
      yield e.filePath;
    } else if (!recurseFilter || recurseFilter(e.filePath)) {
      yield* walk(e.filePath, recurseFilter);
    }
  }
};

const FilesystemStore = require(path.join(libDir, 'stores', 'filesystem.js'));
const S3Object = require(path.join(libDir, 'models', 'object.js'));
const { pick, pickBy } = require(require.resolve('lodash', { paths: [libDir] }));
const proto = FilesystemStore.prototype;

let tmpCounter = 0;
const tmpName = p => `${p}.tmp-${process.pid}-${++tmpCounter}`;

async function writeAtomic(filePath, data) {
  const tmp = tmpName(filePath);
  try {
    await fs.writeFile(tmp, data);
    await fs.rename(tmp, filePath);
  } catch (err) {
    await fs.unlink(tmp).catch(() => {});
    throw err;
  }
}

proto.putMetadata = async function putMetadata(bucket, key, metadata, md5) {
  const metadataPath = this.getResourcePath(bucket, key, 'metadata.json');
  const md5Path = this.getResourcePath(bucket, key, 'object.md5');
  const json = {
    ...pick(metadata, S3Object.ALLOWED_METADATA),
    ...pickBy(metadata, (value, k) => k.startsWith('x-amz-meta-')),
  };
  if (md5) await writeAtomic(md5Path, md5);
  await writeAtomic(metadataPath, JSON.stringify(json, null, 2));
};

proto.deleteObject = async function deleteObject(bucket, key) {
  await Promise.all(
    [
      this.getResourcePath(bucket, key, 'object'),
      this.getResourcePath(bucket, key, 'object.md5'),
      this.getResourcePath(bucket, key, 'metadata.json'),
    ].map(filePath =>
      fs.unlink(filePath).catch(err => {
        if (err.code !== 'ENOENT') throw err;
      }),
    ),
  );
  // remove the directories this emptied; stop at the first one that is not
  // empty or already gone (a concurrent delete took care of it)
  const bucketPath = this.getBucketPath(bucket);
  const parts = FilesystemStore.encodeKeyPath(key).split('/');
  parts.pop();
  while (parts.length) {
    try {
      await fs.rmdir(path.join(bucketPath, ...parts));
    } catch (err) {
      if (vanished(err) || err.code === 'ENOTEMPTY' || err.code === 'EEXIST') break;
      throw err;
    }
    parts.pop();
  }
};

async function openInDir(filePath) {
  // mkdir + open, again if a concurrent delete removed the directory between
  for (let attempt = 0; ; attempt++) {
    try {
      // inside the try: a concurrent delete can remove a parent that mkdirp
      // just created before it creates the next level (ENOENT)
      await fs.mkdirp(path.dirname(filePath));
      return await new Promise((resolve, reject) => {
        const ws = fs.createWriteStream(filePath, { flags: 'wx' });
        ws.once('error', reject);
        ws.once('open', () => {
          ws.removeListener('error', reject);
          resolve(ws);
        });
      });
    } catch (err) {
      // EEXIST: fs-extra's mkdirp found the directory there, then not (a
      // concurrent delete removed it between its mkdir and its stat)
      if ((err.code !== 'ENOENT' && err.code !== 'EEXIST') || attempt >= 20) throw err;
    }
  }
}

proto.putObject = async function putObject(object) {
  const objectPath = this.getResourcePath(object.bucket, object.key, 'object');
  const tmpPath = tmpName(objectPath);
  const ws = await openInDir(tmpPath);
  let size;
  let md5;
  try {
    [size, md5] = await new Promise((resolve, reject) => {
      const md5Context = crypto.createHash('md5');
      let totalLength = 0;
      let finished = false;
      ws.on('error', reject);
      ws.on('finish', () => {
        finished = true;
      });
      // 'close': the file is complete and its descriptor closed
      ws.on('close', () =>
        finished
          ? resolve([totalLength, md5Context.digest('hex')])
          : reject(new Error('object write stream closed early')),
      );
      if (Buffer.isBuffer(object.content)) {
        md5Context.update(object.content);
        totalLength = object.content.length;
        ws.end(object.content);
      } else {
        object.content
          .on('error', reject)
          .on('aborted', () => reject(new Error('request aborted')))
          .pipe(
            new Transform({
              transform(chunk, encoding, callback) {
                md5Context.update(chunk, encoding);
                totalLength += chunk.length;
                callback(null, chunk);
              },
            }),
          )
          .on('error', reject)
          .pipe(ws);
      }
    });
    // the temporary file sits in the object's directory until the rename,
    // so a concurrent delete cannot remove that directory (rmdir: ENOTEMPTY)
    await this.putMetadata(object.bucket, object.key, object.metadata, md5);
    await fs.rename(tmpPath, objectPath);
  } catch (err) {
    ws.destroy();
    await fs.unlink(tmpPath).catch(() => {});
    throw err;
  }
  return { size, md5 };
};
