import { ForbiddenException, Inject, Injectable, SetMetadata, UnauthorizedException, type CanActivate, type ExecutionContext } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { Request } from 'express';
import type { Hub } from '../hub.js';
import type { Role } from '../store/keys.repository.js';
import { HUB, ROLES_KEY } from './tokens.js';

const RANK: Record<Role, number> = { viewer: 0, operator: 1, admin: 2 };

/** The least role a route needs; without it, reads need viewer and writes operator. */
export const MinRole = (role: Role) => SetMetadata(ROLES_KEY, role);
export const Public = () => SetMetadata(ROLES_KEY, 'public');
/** Devices too, with `Authorization: Basic base64(deviceId:secret)` (model downloads); else a viewer key. */
export const DeviceOrViewer = () => SetMetadata(ROLES_KEY, 'device');

/** API keys as `x-api-key` or `Authorization: Bearer`; 401 without a valid key, 403 below the role. */
@Injectable()
export class ApiKeyGuard implements CanActivate {
  constructor(
    @Inject(HUB) private readonly hub: Hub,
    @Inject(Reflector) private readonly reflector: Reflector,
  ) {}

  async canActivate(ctx: ExecutionContext): Promise<boolean> {
    const declared = this.reflector.getAllAndOverride<Role | 'public' | 'device' | undefined>(ROLES_KEY, [ctx.getHandler(), ctx.getClass()]);
    if (declared === 'public') return true;
    const req = ctx.switchToHttp().getRequest<Request>();
    const basic = /^Basic\s+(\S+)$/i.exec(req.headers.authorization ?? '')?.[1];
    if (declared === 'device' && basic !== undefined) {
      const [id, ...rest] = Buffer.from(basic, 'base64').toString('utf8').split(':');
      if (id && (await this.hub.devices.verify(id, rest.join(':')))) return true;
      throw new UnauthorizedException('unknown or revoked device credentials');
    }
    const header = req.headers['x-api-key'];
    const bearer = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '')?.[1];
    const key = (Array.isArray(header) ? header[0] : header) ?? bearer;
    if (!key) throw new UnauthorizedException('an API key is required (x-api-key or Authorization: Bearer)');
    const found = await this.hub.keys.find(key);
    if (!found) throw new UnauthorizedException('unknown or revoked API key');
    const needed: Role = declared === 'device' ? 'viewer' : (declared ?? (req.method === 'GET' || req.method === 'HEAD' ? 'viewer' : 'operator'));
    if (RANK[found.role] < RANK[needed]) throw new ForbiddenException(`this needs the ${needed} role; the key is ${found.role}`);
    return true;
  }
}
