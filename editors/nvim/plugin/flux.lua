-- Commands and mappings of the Flux plugin. `let g:flux_no_mappings = 1` keeps the mappings
-- out; the commands stay.
if vim.g.loaded_flux then
  return
end
vim.g.loaded_flux = true

local function flux()
  return require('flux')
end

local cmd = vim.api.nvim_create_user_command

cmd('FluxSend', function(o)
  if o.range == 0 then
    flux().send_paragraph()
  else
    flux().send_lines(0, o.line1, o.line2)
  end
end,
  { range = true, desc = 'flux: send the lines (default: the paragraph) to flux play' })
cmd('FluxSendParagraph', function() flux().send_paragraph() end, { desc = 'flux: send the paragraph' })
cmd('FluxSendFile', function() flux().send_file() end, { desc = 'flux: send the file' })
cmd('FluxList', function() flux().control({ op = 'list' }) end, { desc = 'flux: list the signals' })
cmd('FluxStatus', function() flux().control({ op = 'status' }) end, { desc = 'flux: engine status' })
cmd('FluxClear', function(o)
  flux().control({ op = 'clear', fade = tonumber(o.args) })
end, { nargs = '?', desc = 'flux: stop every signal [fade]' })
cmd('FluxPanic', function() flux().control({ op = 'panic' }) end,
  { desc = 'flux: fade everything out within 50 ms and stay stopped' })
cmd('FluxStart', function() flux().control({ op = 'start' }) end,
  { desc = 'flux: play again after :FluxPanic, fading in' })
cmd('FluxSubscribe', function() flux().subscribe() end,
  { desc = 'flux: show the faults of playing signals as diagnostics' })
cmd('FluxGain', function(o) flux().control({ op = 'gain', value = tonumber(o.args) }) end,
  { nargs = 1, desc = 'flux: master gain' })
for _, op in ipairs({ 'mute', 'unmute', 'solo', 'stop' }) do
  cmd('Flux' .. op:sub(1, 1):upper() .. op:sub(2), function(o)
    flux().control({ op = op, signal = o.fargs[1], fade = tonumber(o.fargs[2]) })
  end, { nargs = '+', desc = 'flux: ' .. op .. ' ID [fade]' })
end

if not vim.g.flux_no_mappings then
  local map = vim.keymap.set
  map('n', '<leader>fs', function() flux().send_paragraph() end, { desc = 'flux: send paragraph' })
  map('x', '<leader>fs', ':FluxSend<CR>', { desc = 'flux: send selection', silent = true })
  map('n', '<leader>ff', function() flux().send_file() end, { desc = 'flux: send file' })
end
