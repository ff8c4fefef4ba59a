" Flux for Vim: send the paragraph, the selection or the file to a playing `flux play`
" through `flux send`; diagnostics go to the quickfix list.
"
"   let g:flux_cmd = 'flux'             " the flux binary
"   let g:flux_addr = '127.0.0.1:7770'  " where flux play listens
"   let g:flux_token = 'SECRET'         " when flux play runs with --token
"   let g:flux_no_mappings = 1          " keep the mappings out
"
" Mappings: <Leader>fs sends the paragraph (normal) or the selection (visual), <Leader>ff
" the file. Commands: :[range]FluxSend (default: the paragraph), :FluxSendFile, :FluxPanic
" (everything fades out within 50 ms and stays stopped), :FluxStart (plays again),
" :FluxSubscribe (done at the first send unless g:flux_no_subscribe is set): faults found
" while the code plays join the quickfix list at their lines, and go when the signal is
" sent again without an error.

if exists('g:loaded_flux')
  finish
endif
let g:loaded_flux = 1

function! s:send(first, last) abort
  let cmd = get(g:, 'flux_cmd', 'flux') . ' send -'
        \ . ' --to ' . shellescape(get(g:, 'flux_addr', '127.0.0.1:7770'))
        \ . ' --name ' . shellescape(expand('%:.') ==# '' ? 'vim.js' : expand('%:.'))
        \ . ' --line ' . a:first
  if exists('g:flux_token')
    let cmd .= ' --token ' . shellescape(g:flux_token)
  endif
  if !get(g:, 'flux_no_subscribe', 0)
    call FluxSubscribe()
  endif
  let out = system(cmd, getline(a:first, a:last))
  if v:shell_error
    call setqflist([], 'r', {'title': 'flux', 'lines': split(out, "\n"),
          \ 'efm': '%f:%l:%c: %m,%-G%.%#'})
    let s:sent = getqflist()
    call s:show()
    cwindow
    echohl ErrorMsg | echo trim(out) | echohl None
  else
    let s:sent = []
    call s:show()
    if empty(s:faults)
      cclose
    endif
    echo trim(out)
  endif
endfunction

" What the last send reported, and the faults pushed since, by signal id.
let s:sent = []
let s:faults = {}
let s:channel = v:null

" The quickfix list: the errors of the last send, then the faults of playing signals.
function! s:show() abort
  call setqflist([], 'r', {'title': 'flux', 'items': s:sent + values(s:faults)})
endfunction

" One pushed event (docs/PROTOCOL.md, Events).
function! s:on_event(channel, line) abort
  try
    let ev = json_decode(a:line)
  catch
    return
  endtry
  if type(ev) != v:t_dict || !has_key(ev, 'event')
    return
  endif
  if ev.event ==# 'fault' && type(ev.line) == v:t_number
    let s:faults[ev.id] = {'filename': ev.file, 'lnum': ev.line, 'col': ev.col,
          \ 'text': ev.message . " (signal '" . ev.id . "' silenced)", 'type': 'E'}
    call s:show()
  elseif ev.event ==# 'cleared' && has_key(s:faults, ev.id)
    call remove(s:faults, ev.id)
    call s:show()
  endif
endfunction

" Subscribes to the faults of the playing signals (a channel that stays open).
function! FluxSubscribe() abort
  if s:channel isnot v:null && ch_status(s:channel) ==# 'open'
    return 1
  endif
  let addr = get(g:, 'flux_addr', '127.0.0.1:7770')
  let s:channel = ch_open(addr, {'mode': 'nl', 'callback': function('s:on_event'),
        \ 'waittime': 1000})
  if ch_status(s:channel) !=# 'open'
    return 0
  endif
  let req = {'op': 'subscribe', 'events': ['faults']}
  if exists('g:flux_token')
    let req.token = g:flux_token
  endif
  call ch_sendraw(s:channel, json_encode(req) . "\n")
  return 1
endfunction

" The lines between blank lines around the cursor.
function! s:paragraph() abort
  let first = search('^\s*$', 'bnW') + 1
  let last = search('^\s*$', 'nW')
  let last = last == 0 ? line('$') : last - 1
  return [first, max([first, last])]
endfunction

function! s:send_paragraph() abort
  let [first, last] = s:paragraph()
  call s:send(first, last)
endfunction

command! -range=0 FluxSend if <count> | call s:send(<line1>, <line2>) | else | call s:send_paragraph() | endif
command! FluxSendFile call s:send(1, line('$'))

function! s:panic(start) abort
  let cmd = get(g:, 'flux_cmd', 'flux') . ' panic'
        \ . ' --to ' . shellescape(get(g:, 'flux_addr', '127.0.0.1:7770'))
        \ . (a:start ? ' --start' : '')
  if exists('g:flux_token')
    let cmd .= ' --token ' . shellescape(g:flux_token)
  endif
  let out = system(cmd)
  if v:shell_error
    echohl ErrorMsg | echo trim(out) | echohl None
  else
    echo trim(out)
  endif
endfunction

command! FluxSubscribe call FluxSubscribe()
command! FluxPanic call s:panic(0)
command! FluxStart call s:panic(1)

if !get(g:, 'flux_no_mappings', 0)
  nnoremap <silent> <Leader>fs :<C-u>FluxSend<CR>
  xnoremap <silent> <Leader>fs :FluxSend<CR>
  nnoremap <silent> <Leader>ff :<C-u>FluxSendFile<CR>
endif
