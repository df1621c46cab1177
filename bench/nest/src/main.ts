// The stack of the original Tolstoy: NestJS on @nestjs/platform-fastify with Prisma 7, serving
// the benchmark's endpoints with the same tenant check and the same responses. Benchmark only;
// built with its own tsconfig, because NestJS needs TypeScript's legacy decorators.
import 'reflect-metadata';
import {
  type ArgumentsHost,
  Body,
  type CanActivate,
  Catch,
  Controller,
  type ExceptionFilter,
  type ExecutionContext,
  Get,
  HttpException,
  Injectable,
  Module,
  type OnModuleDestroy,
  Param,
  Post,
  Put,
  Query,
  Req,
  Res,
  UseFilters,
  UseGuards,
} from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import { PrismaPg } from '@prisma/adapter-pg';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { PrismaClient } from '../../../src/generated/prisma/client.ts';
import { accessLog, keyOf, UNAUTHORIZED } from '../../peers.ts';

const UUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
const CURSOR = /^v1[A-Za-z0-9_-]{22}$/;

class Problem extends HttpException {
  constructor(status: number, kind: string, title: string, detail: string) {
    super({ type: `/problems/${kind}`, title, status, detail }, status);
  }
}

@Catch(HttpException)
class ProblemFilter implements ExceptionFilter {
  catch(exception: HttpException, host: ArgumentsHost) {
    const request = host.switchToHttp().getRequest<FastifyRequest>();
    const reply = host.switchToHttp().getResponse<FastifyReply>();
    const status = exception.getStatus();
    const response = exception.getResponse();
    const body =
      exception instanceof Problem
        ? response
        : { type: '/problems/validation-error', title: 'The request is not valid', status, detail: String(exception.message) };
    reply
      .code(status)
      .type('application/problem+json; charset=utf-8')
      .send(JSON.stringify({ ...(body as object), instance: request.url.split('?')[0] }));
  }
}

@Injectable()
class Database extends PrismaClient implements OnModuleDestroy {
  constructor() {
    super({ adapter: new PrismaPg({ connectionString: process.env.DATABASE_URL, max: 10 }) });
  }

  async onModuleDestroy() {
    await this.$disconnect();
  }
}

interface TenantRequest extends FastifyRequest {
  tenant: { orgId: string; userId: string };
}

/** The caller's member, from the API key: one query per request, as the original stack would. */
@Injectable()
class KeyGuard implements CanActivate {
  constructor(private readonly db: Database) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const request = context.switchToHttp().getRequest<TenantRequest>();
    const key = keyOf(request.headers.authorization);
    const row = key && (await this.db.apiKey.findUnique({ where: { lookup: key.lookup }, select: { orgId: true, userId: true, hash: true, expiresAt: true } }));
    if (!key || !row || row.hash !== key.hash || (row.expiresAt !== null && row.expiresAt <= new Date())) {
      context.switchToHttp().getResponse<FastifyReply>().header('www-authenticate', 'Bearer realm="tolstoy"');
      throw new Problem(401, 'unauthorized', UNAUTHORIZED.title, UNAUTHORIZED.detail);
    }
    request.tenant = { orgId: row.orgId, userId: row.userId };
    return true;
  }
}

const decodeCursor = (cursor: string) => {
  const hex = Buffer.from(cursor.slice(2), 'base64url').toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
};
const encodeCursor = (id: string) => `v1${Buffer.from(id.replaceAll('-', ''), 'hex').toString('base64url')}`;

function pageArgs(limitText: string | undefined, cursor: string | undefined) {
  const limit = limitText === undefined ? 20 : Number(limitText);
  if (!Number.isInteger(limit) || limit < 1 || limit > 100)
    throw new Problem(400, 'validation-error', 'The request is not valid', 'query/limit: must be from 1 to 100');
  if (cursor !== undefined && !CURSOR.test(cursor))
    throw new Problem(400, 'validation-error', 'The request is not valid', 'query/cursor: is not a cursor this API returned');
  return { limit, after: cursor === undefined ? undefined : decodeCursor(cursor) };
}

function page<Row extends { id: string }>(rows: Row[], limit: number, map: (row: Row) => unknown) {
  const items = rows.slice(0, limit);
  return { items: items.map(map), nextCursor: rows.length > limit ? encodeCursor(items.at(-1)!.id) : null };
}

function checkId(id: string) {
  if (!UUID.test(id)) throw new Problem(400, 'validation-error', 'The request is not valid', 'path/id: must be a UUID');
}

function flow(row: any) {
  return {
    id: row.id,
    orgId: row.orgId,
    name: row.name,
    description: row.description,
    version: row.version,
    steps: JSON.parse(row.steps),
    output: row.output === null ? null : JSON.parse(row.output),
    onFailure: row.onFailureFlowId === null ? null : { flowId: row.onFailureFlowId },
    concurrency: row.concurrency === null ? null : JSON.parse(row.concurrency),
    createdAt: row.createdAt.toISOString(),
    updatedAt: row.updatedAt.toISOString(),
  };
}

@Controller('flows')
@UseGuards(KeyGuard)
@UseFilters(ProblemFilter)
class FlowsController {
  constructor(private readonly db: Database) {}

  @Get(':id')
  async get(@Req() request: TenantRequest, @Param('id') id: string) {
    checkId(id);
    const row = await this.db.flow.findUnique({ where: { orgId_id: { orgId: request.tenant.orgId, id }, deletedAt: null } });
    if (!row) throw new Problem(404, 'not-found', 'Not found', `No flow ${id} in this organization.`);
    return flow(row);
  }

  @Get()
  async list(@Req() request: TenantRequest, @Query('limit') limitText?: string, @Query('cursor') cursor?: string) {
    const { limit, after } = pageArgs(limitText, cursor);
    const rows = await this.db.flow.findMany({
      where: { orgId: request.tenant.orgId, deletedAt: null, ...(after && { id: { lt: after } }) },
      orderBy: { id: 'desc' },
      take: limit + 1,
    });
    return page(rows, limit, flow);
  }

  @Put(':id')
  async update(@Req() request: TenantRequest, @Param('id') id: string, @Body() body: { name?: unknown }) {
    checkId(id);
    if (typeof body?.name !== 'string' || body.name.length === 0 || body.name.length > 200)
      throw new Problem(400, 'validation-error', 'The request is not valid', 'body/name: must be a name');
    const name = body.name;
    try {
      const row = await this.db.$transaction(async (tx) => {
        const updated = await tx.flow.update({
          where: { orgId_id: { orgId: request.tenant.orgId, id }, deletedAt: null },
          data: { name, version: { increment: 1 } },
        });
        const { orgId, version, description, steps, output } = updated;
        await tx.flowVersion.create({ data: { orgId, flowId: updated.id, version, name: updated.name, description, steps, output } });
        return updated;
      });
      return flow(row);
    } catch (error) {
      if ((error as { code?: string }).code === 'P2025') throw new Problem(404, 'not-found', 'Not found', `No flow ${id} in this organization.`);
      throw error;
    }
  }
}

const AUTH_TYPES = ['none', 'apiKey', 'bearer', 'basic', 'oauth2'] as const;

@Controller('tools')
@UseGuards(KeyGuard)
@UseFilters(ProblemFilter)
class ToolsController {
  constructor(private readonly db: Database) {}

  @Post()
  async create(
    @Req() request: TenantRequest,
    @Res({ passthrough: true }) reply: FastifyReply,
    @Body() body: { name?: unknown; baseUrl?: unknown; authType?: unknown; description?: unknown },
  ) {
    const authType = body?.authType ?? 'none';
    if (typeof body?.name !== 'string' || typeof body.baseUrl !== 'string' || !/^https?:\/\//.test(body.baseUrl) || !AUTH_TYPES.includes(authType as never)) {
      throw new Problem(400, 'validation-error', 'The request is not valid', 'body: a tool needs a name, a baseUrl and a known authType');
    }
    const tool = await this.db.tool.create({
      data: {
        orgId: request.tenant.orgId,
        name: body.name,
        baseUrl: body.baseUrl,
        authType: authType as (typeof AUTH_TYPES)[number],
        description: typeof body.description === 'string' ? body.description : null,
      },
    });
    reply.header('location', `/tools/${tool.id}`);
    return {
      id: tool.id,
      orgId: tool.orgId,
      name: tool.name,
      description: tool.description,
      baseUrl: tool.baseUrl,
      authType: tool.authType,
      hasCredentials: tool.credentials !== null,
      rateLimit: tool.rateLimitRequests === null || tool.rateLimitPerMs === null ? null : { requests: tool.rateLimitRequests, perMs: tool.rateLimitPerMs },
      pausedUntil: tool.pausedUntil?.toISOString() ?? null,
      createdAt: tool.createdAt.toISOString(),
      updatedAt: tool.updatedAt.toISOString(),
    };
  }
}

@Controller('execution-logs')
@UseGuards(KeyGuard)
@UseFilters(ProblemFilter)
class ExecutionLogsController {
  constructor(private readonly db: Database) {}

  @Get()
  async list(@Req() request: TenantRequest, @Query('flowId') flowId?: string, @Query('limit') limitText?: string, @Query('cursor') cursor?: string) {
    if (flowId !== undefined) checkId(flowId);
    const { limit, after } = pageArgs(limitText, cursor);
    const rows = await this.db.executionLog.findMany({
      where: { orgId: request.tenant.orgId, ...(flowId && { flowId }), ...(after && { id: { lt: after } }) },
      orderBy: { id: 'desc' },
      take: limit + 1,
    });
    return page(rows, limit, (row) => ({
      id: row.id,
      orgId: row.orgId,
      flowId: row.flowId,
      userId: row.userId,
      writtenBy: row.writtenByEngine ? 'engine' : 'member',
      executionId: row.executionId,
      stepKey: row.stepKey,
      status: row.status,
      inputs: JSON.parse(row.inputs),
      outputs: row.outputs === null ? null : JSON.parse(row.outputs),
      error: row.error === null ? null : JSON.parse(row.error),
      durationMs: row.durationMs,
      createdAt: row.createdAt.toISOString(),
      updatedAt: row.updatedAt.toISOString(),
    }));
  }
}

@Module({ controllers: [FlowsController, ToolsController, ExecutionLogsController], providers: [Database, KeyGuard] })
class AppModule {}

const app = await NestFactory.create<NestFastifyApplication>(AppModule, new FastifyAdapter(), { logger: ['error'] });
accessLog(app.getHttpAdapter().getInstance(), 'NestJS');
app.enableShutdownHooks();
await app.listen(Number(process.env.PORT), '127.0.0.1');
