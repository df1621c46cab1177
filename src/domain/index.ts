// Every operation of the contract, by operationId. The Handlers type makes a missing or
// mistyped handler a compile error.

import * as actions from './actions.ts';
import * as apiKeys from './apiKeys.ts';
import type { Handlers } from './contract.ts';
import * as executionLogs from './executionLogs.ts';
import * as executions from './executions.ts';
import * as flows from './flows.ts';
import * as organizations from './organizations.ts';
import * as service from './service.ts';
import * as tools from './tools.ts';
import * as users from './users.ts';

export const handlers: Handlers = {
  getHealth: service.getHealth,
  getReadiness: service.getReadiness,
  listOrganizations: organizations.listOrganizations,
  createOrganization: organizations.createOrganization,
  getOrganization: organizations.getOrganization,
  updateOrganization: organizations.updateOrganization,
  deleteOrganization: organizations.deleteOrganization,
  listUsers: users.listUsers,
  createUser: users.createUser,
  getUser: users.getUser,
  updateUser: users.updateUser,
  deleteUser: users.deleteUser,
  listApiKeys: apiKeys.listApiKeys,
  createApiKey: apiKeys.createApiKey,
  getApiKey: apiKeys.getApiKey,
  deleteApiKey: apiKeys.deleteApiKey,
  listTools: tools.listTools,
  createTool: tools.createTool,
  getTool: tools.getTool,
  updateTool: tools.updateTool,
  deleteTool: tools.deleteTool,
  listActions: actions.listActions,
  createAction: actions.createAction,
  getAction: actions.getAction,
  updateAction: actions.updateAction,
  deleteAction: actions.deleteAction,
  listFlows: flows.listFlows,
  createFlow: flows.createFlow,
  getFlow: flows.getFlow,
  updateFlow: flows.updateFlow,
  deleteFlow: flows.deleteFlow,
  listFlowVersions: flows.listFlowVersions,
  getFlowVersion: flows.getFlowVersion,
  startExecution: executions.startExecution,
  listExecutions: executions.listExecutions,
  getExecution: executions.getExecution,
  cancelExecution: executions.cancelExecution,
  retryExecution: executions.retryExecution,
  listExecutionLogs: executionLogs.listExecutionLogs,
  createExecutionLog: executionLogs.createExecutionLog,
  getExecutionLog: executionLogs.getExecutionLog,
  updateExecutionLog: executionLogs.updateExecutionLog,
  deleteExecutionLog: executionLogs.deleteExecutionLog,
};
