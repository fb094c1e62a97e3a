// A homeserver in memory, as much of one as the Matrix machine needs: key uploads, device
// queries, one-time key claims, to-device delivery, device-list changes and key counts.

const name = (user, device) => `${user}|${device}`;

export class Homeserver {
  constructor() {
    this.deviceKeys = new Map();
    this.oneTimeKeys = new Map();
    this.fallbackKeys = new Map();
    this.toDevice = new Map();
    this.changed = new Map();
  }

  join(user, device) {
    if (!this.changed.has(name(user, device))) this.changed.set(name(user, device), new Set());
  }

  announce(user) {
    for (const users of this.changed.values()) users.add(user);
  }

  handle(user, device, path, body) {
    const me = name(user, device);
    if (path.endsWith('/keys/upload')) {
      if (body.device_keys) {
        this.deviceKeys.set(me, { user, device, keys: body.device_keys });
        this.announce(user);
      }
      const queue = this.oneTimeKeys.get(me) ?? [];
      for (const [id, key] of Object.entries(body.one_time_keys ?? {})) queue.push([id, key]);
      this.oneTimeKeys.set(me, queue);
      const fallback = Object.entries(body.fallback_keys ?? {})[0];
      if (fallback) this.fallbackKeys.set(me, fallback);
      return { one_time_key_counts: { signed_curve25519: queue.length } };
    }
    if (path.endsWith('/keys/query')) {
      const listed = {};
      for (const queried of Object.keys(body.device_keys ?? {})) {
        listed[queried] = {};
        for (const entry of this.deviceKeys.values()) {
          if (entry.user === queried) listed[queried][entry.device] = entry.keys;
        }
      }
      return { device_keys: listed, failures: {} };
    }
    if (path.endsWith('/keys/claim')) {
      const claimed = {};
      for (const [claimUser, devices] of Object.entries(body.one_time_keys ?? {})) {
        claimed[claimUser] = {};
        for (const claimDevice of Object.keys(devices)) {
          const target = name(claimUser, claimDevice);
          const key = this.oneTimeKeys.get(target)?.shift() ?? this.fallbackKeys.get(target);
          if (key) claimed[claimUser][claimDevice] = { [key[0]]: key[1] };
        }
      }
      return { one_time_keys: claimed, failures: {} };
    }
    if (path.includes('/sendToDevice/')) {
      const eventType = decodeURIComponent(path.split('/').at(-2));
      for (const [toUser, devices] of Object.entries(body.messages ?? {})) {
        for (const [toDevice, content] of Object.entries(devices)) {
          const queue = this.toDevice.get(name(toUser, toDevice)) ?? [];
          queue.push({ type: eventType, sender: user, content });
          this.toDevice.set(name(toUser, toDevice), queue);
        }
      }
      return {};
    }
    throw new Error(`the harness does not serve ${path}`);
  }

  sync(user, device) {
    const me = name(user, device);
    const toDeviceEvents = this.toDevice.get(me) ?? [];
    this.toDevice.delete(me);
    const changedUsers = [...(this.changed.get(me) ?? [])];
    this.changed.set(me, new Set());
    return {
      toDeviceEvents,
      changedUsers,
      oneTimeKeyCount: this.oneTimeKeys.get(me)?.length ?? 0,
      unusedFallbackKeyTypes: this.fallbackKeys.has(me) ? ['signed_curve25519'] : [],
    };
  }
}

export const ENCRYPTION = { algorithm: 'm.megolm.v1.aes-sha2' };
export const NOW = 1_765_000_000_000;

/** A client: one machine, driving the homeserver as an application would. */
export class Client {
  constructor(hs, machine) {
    this.hs = hs;
    this.machine = machine;
    this.sent = 0;
    hs.join(machine.userId, machine.deviceId);
  }

  async send(request) {
    const response = this.hs.handle(this.machine.userId, this.machine.deviceId, request.path, request.body);
    await this.machine.markRequestAsSent(request.id, response);
  }

  async flush() {
    for (let i = 0; i < 10; i++) {
      const requests = await this.machine.outgoingRequests();
      if (requests.length === 0) return;
      for (const request of requests) await this.send(request);
    }
    throw new Error('requests kept coming');
  }

  async sync(app) {
    const outcomes = await this.machine.receiveSyncChanges(
      this.hs.sync(this.machine.userId, this.machine.deviceId), app);
    await this.flush();
    return outcomes;
  }

  async share(room, members) {
    await this.machine.updateTrackedUsers(members);
    await this.flush();
    const claim = await this.machine.missingSessions(members);
    if (claim) await this.send(claim);
    const share = await this.machine.shareRoomKey(room, members, ENCRYPTION, NOW);
    await this.flush();
    return share;
  }

  async message(room, body) {
    const content = await this.machine.encryptRoomEvent(
      room, 'm.room.message', { msgtype: 'm.text', body }, ENCRYPTION, NOW);
    this.sent += 1;
    return {
      type: 'm.room.encrypted', sender: this.machine.userId,
      event_id: `$${this.machine.deviceId}-${this.sent}`, origin_server_ts: NOW + this.sent,
      room_id: room, content,
    };
  }
}
