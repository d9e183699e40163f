-- Neovim's own LSP client driving `k8srule lsp`: opens a rule file, edits it
-- as a person would, asks for diagnostics, hover, completion, definitions and
-- formatting, and writes what the client got as JSON for the Rust test
-- (tests/tests/it/lsp.rs). Runs on Neovim 0.7 (Debian 12) and later.
--   K8SRULE_BIN   the k8srule binary
--   K8SRULE_DIR   a directory holding demo.k8srule (with an error and a warning) and the hostile files
--   K8SRULE_OUT   where the JSON goes
local bin, dir, out = os.getenv('K8SRULE_BIN'), os.getenv('K8SRULE_DIR'), os.getenv('K8SRULE_OUT')
local got = { steps = {} }
local TIMEOUT = 30000

local function lines(buf)
  return vim.api.nvim_buf_get_lines(buf, 0, -1, false)
end

-- the (0-based) line and byte column of the first match of `pattern` (plain) on a line containing `context`
local function find(buf, context, pattern)
  for i, line in ipairs(lines(buf)) do
    if line:find(context, 1, true) then
      local col = line:find(pattern, 1, true)
      if col then return i - 1, col - 1 end
    end
  end
  error('no ' .. pattern .. ' on a line with ' .. context)
end

local function at(buf, line, col)
  return { textDocument = { uri = vim.uri_from_bufnr(buf) }, position = { line = line, character = col } }
end

local function request(buf, method, params)
  local answers, err = vim.lsp.buf_request_sync(buf, method, params, TIMEOUT)
  if not answers then error(method .. ': ' .. tostring(err)) end
  for _, answer in pairs(answers) do
    if answer.err then error(method .. ': ' .. vim.inspect(answer.err)) end
    return answer.result
  end
end

local function diagnostics(buf)
  local found = {}
  for _, d in ipairs(vim.diagnostic.get(buf)) do
    table.insert(found, { line = d.lnum, col = d.col, message = d.message, warning = d.severity == vim.diagnostic.severity.WARN })
  end
  table.sort(found, function(a, b) return a.line < b.line or (a.line == b.line and a.col < b.col) end)
  return found
end

local function wait_for(what, condition)
  if not vim.wait(TIMEOUT, condition, 20) then error('timed out waiting for ' .. what) end
end

local function labels(items)
  local found = {}
  for _, item in ipairs(items and (items.items or items) or {}) do table.insert(found, item.label) end
  return found
end

-- replaces the line holding `context` by `text`, completes at `col` (default:
-- its end), and puts the line back
local function complete(buf, context, text, col)
  local line = find(buf, context, context)
  local was = vim.api.nvim_buf_get_lines(buf, line, line + 1, false)
  vim.api.nvim_buf_set_lines(buf, line, line + 1, false, { text })
  local result = request(buf, 'textDocument/completion', at(buf, line, col or #text))
  vim.api.nvim_buf_set_lines(buf, line, line + 1, false, was)
  return result, line
end

local function main()
  vim.cmd('edit ' .. vim.fn.fnameescape(dir .. '/demo.k8srule'))
  local buf = vim.api.nvim_get_current_buf()
  local client = vim.lsp.start_client({
    name = 'k8srule',
    cmd = { bin, 'lsp' },
    root_dir = dir,
    flags = { debounce_text_changes = 0 },
  })
  vim.lsp.buf_attach_client(buf, client)

  -- diagnostics as the file opens, then as it is fixed
  wait_for('diagnostics', function() return #vim.diagnostic.get(buf) > 0 end)
  got.opened = diagnostics(buf)
  for _, typo in ipairs({ { 'let t =', 'lastStat.', 'lastState.' }, { 'explains', 'BakOff', 'BackOff' } }) do
    local line, col = find(buf, typo[1], typo[2])
    vim.api.nvim_buf_set_text(buf, line, col, line, col + #typo[2], { typo[3] })
  end
  wait_for('no diagnostics', function() return #vim.diagnostic.get(buf) == 0 end)
  got.fixed = diagnostics(buf)
  table.insert(got.steps, 'fixed')

  -- hover: a field, names bound by `let` and `for`, a field in a text's placeholder, a function, a cause key
  local function hover(context, pattern, shift)
    local l, c = find(buf, context, pattern)
    local result = request(buf, 'textDocument/hover', at(buf, l, c + (shift or 0)))
    return result and result.contents.value
  end
  got.hover_field = hover('let t =', 'terminated', 3)
  got.hover_let = hover('when', 't.reason')
  got.hover_for = hover('let t =', 'c.lastState')
  got.hover_placeholder = hover('title', 'c.name', 2)
  got.hover_function = hover('when', 'coalesce')
  got.hover_cause = hover('explains', 'state.Crash')

  -- go to definition: a `let` name, a table
  local function definition(context, pattern)
    local l, c = find(buf, context, pattern)
    local result = request(buf, 'textDocument/definition', at(buf, l, c))
    if result and result.range == nil then result = result[1] end
    return result and { line = result.range.start.line, character = result.range.start.character, uri = result.uri }
  end
  got.definition_let = definition('when', 't.exitCode')
  got.definition_table = definition('when', 'signal[')
  got.definition_for = definition('let t =', 'c.lastState')
  got.uri = vim.uri_from_bufnr(buf)

  -- completion: fields after a `.`, names and functions, cause keys in `explains`
  got.complete_fields = labels(complete(buf, 'let t =', '  let t = c.lastState.'))
  got.complete_names = labels(complete(buf, 'let t =', '  let t = co'))
  local quantified = '  let t = any(e in c.events: e.)'
  got.complete_quantified = labels(complete(buf, 'let t =', quantified, #quantified - 1))
  got.complete_placeholder = labels(complete(buf, 'title', '  title "container {c.}"', #'  title "container {c.'))
  local causes, cause_line = complete(buf, 'explains', '  explains "state.CrashLoopBackOff", "cgroup')
  got.complete_causes = labels(causes)
  for _, item in ipairs(causes.items or causes) do
    if item.label == 'cgroup-oom' then got.cause_edit = item.textEdit end
  end
  got.cause_line = cause_line
  table.insert(got.steps, 'completed')

  -- formatting: a file out of shape back in the canonical layout
  local original = lines(buf)
  local messy = {}
  for _, l in ipairs(original) do
    table.insert(messy, (l:gsub('^%s+', '    '):gsub(' == ', '=='):gsub(' and ', '   and ')))
  end
  vim.api.nvim_buf_set_lines(buf, 0, -1, false, messy)
  got.messy = table.concat(messy, '\n')
  local edits = request(buf, 'textDocument/formatting', { textDocument = { uri = vim.uri_from_bufnr(buf) }, options = { tabSize = 2, insertSpaces = true } })
  vim.lsp.util.apply_text_edits(edits or {}, buf, 'utf-16')
  got.formatted = table.concat(lines(buf), '\n')
  table.insert(got.steps, 'formatted')

  -- hostile files: nested deep, a chain at the nesting bound, past it, larger than the server reads
  for _, name in ipairs({ 'deep', 'chain', 'nested', 'huge' }) do
    vim.cmd('edit ' .. vim.fn.fnameescape(dir .. '/' .. name .. '.k8srule'))
    local hostile = vim.api.nvim_get_current_buf()
    vim.lsp.buf_attach_client(hostile, client)
    wait_for(name .. ' diagnostics', function() return #vim.diagnostic.get(hostile) > 0 end)
    local messages = {}
    for _, d in ipairs(diagnostics(hostile)) do table.insert(messages, d.message) end
    got[name] = messages
  end
  -- and the server still answers
  got.hover_after = request(buf, 'textDocument/hover', at(buf, find(buf, 'let t =', 'terminated'))).contents.value
  table.insert(got.steps, 'done')
end

local ok, err = pcall(main)
if not ok then got.error = tostring(err) end
local f = io.open(out, 'w')
f:write(vim.fn.json_encode(got))
f:close()
vim.cmd('qall!')
