// dialog#confirm: resolves true on #confirm-yes, false on #confirm-no or Escape.
export function confirmDialog(text) {
  const dlg = document.getElementById('confirm');
  // The button that asked may be re-rendered by a poll meanwhile: found again by its key.
  const back = document.activeElement;
  const backKey = back && back.dataset ? back.dataset.focusKey : undefined;
  document.getElementById('confirm-text').textContent = text;
  return new Promise((resolve) => {
    const yes = document.getElementById('confirm-yes');
    const no = document.getElementById('confirm-no');
    const done = (v) => {
      yes.removeEventListener('click', onYes);
      no.removeEventListener('click', onNo);
      dlg.removeEventListener('close', onClose);
      if (dlg.open) dlg.close();
      const again = backKey && document.querySelector(`[data-focus-key="${CSS.escape(backKey)}"]`);
      if (again) again.focus();
      else if (back && back.isConnected) back.focus();
      resolve(v);
    };
    const onYes = () => done(true);
    const onNo = () => done(false);
    const onClose = () => done(false); // Escape closes a modal dialog
    yes.addEventListener('click', onYes);
    no.addEventListener('click', onNo);
    dlg.addEventListener('close', onClose);
    dlg.showModal();
    no.focus();
  });
}
